import { compress } from "snappyjs";

/*
 * Prometheus remote-write 1.0 (https://prometheus.io/docs/specs/remote_write_spec/): a protobuf
 * `prometheus.WriteRequest`, compressed with snappy's block format (not its framed format). Only the fields
 * version 1.0 requires are written, by hand, so no protobuf library or generated code is needed:
 *
 *   message WriteRequest { repeated TimeSeries timeseries = 1; }
 *   message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   message Label        { string name = 1; string value = 2; }
 *   message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: milliseconds since the epoch
 */

/** What a receiver needs besides the body: the spec names all three. */
export const REMOTE_WRITE_HEADERS = {
  "content-type": "application/x-protobuf",
  "content-encoding": "snappy",
  "x-prometheus-remote-write-version": "0.1.0",
} as const;

export type Label = { name: string; value: string };
export type Sample = { value: number; timestampMs: number };
export type TimeSeries = { labels: readonly Label[]; samples: readonly Sample[] };

/** Protobuf wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;

/** Field tags (field number << 3 | wire type); every one fits in one byte. */
const TIMESERIES_TAG = (1 << 3) | LENGTH_DELIMITED;
const LABEL_TAG = (1 << 3) | LENGTH_DELIMITED;
const SAMPLE_TAG = (2 << 3) | LENGTH_DELIMITED;
const NAME_TAG = (1 << 3) | LENGTH_DELIMITED;
const VALUE_TAG = (2 << 3) | LENGTH_DELIMITED;
const SAMPLE_VALUE_TAG = (1 << 3) | FIXED64;
const SAMPLE_TIMESTAMP_TAG = (2 << 3) | VARINT;

function varintSize(value: number): number {
  let size = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    size++;
  }
  return size;
}

/** UTF-8 length of `text`: its length when it is ASCII (label names and values almost always are). */
function utf8Length(text: string): number {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) {
      return Buffer.byteLength(text, "utf8");
    }
  }
  return text.length;
}

function sampleSize(sample: Sample): number {
  // value: tag + 8 bytes; timestamp: tag + varint.
  return 1 + 8 + 1 + varintSize(sample.timestampMs);
}

function byName(a: Label, b: Label): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** Labels sorted by name, as the spec requires (`__name__` sorts before lower-case names); copied only when unsorted. */
function sortedLabels(labels: readonly Label[]): readonly Label[] {
  for (let i = 1; i < labels.length; i++) {
    if (byName(labels[i - 1] as Label, labels[i] as Label) > 0) {
      return [...labels].sort(byName);
    }
  }
  return labels;
}

/**
 * The protobuf bytes of a WriteRequest holding `series` (uncompressed). Labels are sorted by name here;
 * a sample's timestamp must be a whole, non-negative number of milliseconds.
 *
 * Two passes over plain numbers: the first measures every nested message (each is written length-first),
 * the second writes the whole request front to back into one buffer. This runs for every organization every
 * interval, so it allocates nothing per label: ASCII strings are copied byte by byte, others by Buffer.write.
 */
export function encodeWriteRequest(series: readonly TimeSeries[]): Uint8Array {
  const sorted = series.map((s) => sortedLabels(s.labels));
  // Per label: name bytes, value bytes; per series: its size. In write order.
  const sizes: number[] = [];
  let total = 0;
  for (let i = 0; i < series.length; i++) {
    const labels = sorted[i] as readonly Label[];
    const sizeAt = sizes.length;
    sizes.push(0);
    let size = 0;
    for (const l of labels) {
      const name = utf8Length(l.name);
      const value = utf8Length(l.value);
      sizes.push(name, value);
      const label = 1 + varintSize(name) + name + 1 + varintSize(value) + value;
      size += 1 + varintSize(label) + label;
    }
    for (const sample of (series[i] as TimeSeries).samples) {
      const ss = sampleSize(sample);
      size += 1 + varintSize(ss) + ss;
    }
    sizes[sizeAt] = size;
    total += 1 + varintSize(size) + size;
  }

  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  const varint = (value: number): void => {
    // Values here are non-negative and below 2^53 (lengths, millisecond timestamps): plain arithmetic
    // instead of 32-bit shifts, which would truncate a timestamp.
    let v = value;
    while (v >= 0x80) {
      out[offset++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    out[offset++] = v;
  };
  const string = (text: string, bytes: number): void => {
    if (bytes === text.length) {
      for (let i = 0; i < bytes; i++) {
        out[offset++] = text.charCodeAt(i);
      }
    } else {
      offset += out.write(text, offset, bytes, "utf8");
    }
  };
  let at = 0;
  for (let i = 0; i < series.length; i++) {
    out[offset++] = TIMESERIES_TAG;
    varint(sizes[at++] as number);
    for (const l of sorted[i] as readonly Label[]) {
      const name = sizes[at++] as number;
      const value = sizes[at++] as number;
      out[offset++] = LABEL_TAG;
      varint(1 + varintSize(name) + name + 1 + varintSize(value) + value);
      out[offset++] = NAME_TAG;
      varint(name);
      string(l.name, name);
      out[offset++] = VALUE_TAG;
      varint(value);
      string(l.value, value);
    }
    for (const sample of (series[i] as TimeSeries).samples) {
      out[offset++] = SAMPLE_TAG;
      varint(sampleSize(sample));
      out[offset++] = SAMPLE_VALUE_TAG;
      out.writeDoubleLE(sample.value, offset);
      offset += 8;
      out[offset++] = SAMPLE_TIMESTAMP_TAG;
      varint(sample.timestampMs);
    }
  }
  return out;
}

/** The snappy-compressed WriteRequest: a remote-write request body. */
export function remoteWriteBody(series: readonly TimeSeries[]): Buffer {
  const compressed = compress(encodeWriteRequest(series));
  return Buffer.from(compressed.buffer, compressed.byteOffset, compressed.byteLength);
}
