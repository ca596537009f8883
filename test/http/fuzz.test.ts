/**
 * Fuzz: every /v1 operation in the OpenAPI document, called with the operator key and with an
 * organization key that may use it, gets malformed JSON, bodies of the wrong shape, unknown fields,
 * huge strings, text PostgreSQL cannot store, JSON nested 10,000 deep, bodies over 1 MiB, media types
 * that are not JSON, odd ids in the path and odd query values.
 *
 * The promise under all of it: a 4xx RFC 9457 problem document with a `code` and a `request_id`,
 * never a 5xx, never a stack trace, a driver message or a key. Ids of the wrong shape are a 404.
 *
 * Variations come from a seeded generator, one stream per operation, case and credential, so a
 * failure replays exactly and a route added later does not change the cases of the others. (Ids that
 * must merely be well-formed and unknown are fresh TypeIDs; their shape is all that matters.)
 */
import { typeid } from "typeid-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi, openApiDocument } from "../../src/http/api.ts";
import { MAX_BODY_BYTES } from "../../src/http/middleware/body.ts";
import { createTestContext, type RequestOptions, type TestContext, type TestResponse } from "../harness.ts";
import { mulberry32 } from "../util.ts";

const SEED = 20_240_917;
const HUGE_STRING_CHARS = 100_000;
const DEEP_NESTING = 10_000;

// ---------------------------------------------------------------------------------------------------
// A tiny seeded generator (mulberry32), seeded per stream from FNV-1a of its name.

type Random = {
  int(maxExclusive: number): number;
  pick<T>(items: readonly T[]): T;
  sample<T>(items: readonly T[], count: number): T[];
  text(length: number): string;
};

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

/**
 * ASCII, punctuation that means something to SQL, URLs and JSON, and characters outside the BMP.
 * Without g and p, so that no random text spells "pg" and passes for a driver message when quoted back.
 */
const TEXT_ALPHABET = [
  ..."abcdefhijklmnoqrstuvwxyzABCDEFHIJKLMNOQRSTUVWXYZ0123456789",
  ..." -_.~!*'();:@&=+$,/?#[]%\"\\<>{}|^`",
  ..."éüßøñçЖж中文日本語한국어",
  "😀",
  "🏳️‍🌈",
  "\u202e",
  "\t",
];

function createRandom(stream: string): Random {
  const next = mulberry32(fnv1a(`${SEED}:${stream}`));
  const int = (maxExclusive: number) => Math.floor(next() * maxExclusive);
  function pick<T>(items: readonly T[]): T {
    const item = items[int(items.length)];
    if (item === undefined) {
      throw new Error(`pick() from an empty list in stream ${stream}`);
    }
    return item;
  }
  return {
    int,
    pick,
    sample<T>(items: readonly T[], count: number): T[] {
      const pool = [...items];
      const out: T[] = [];
      while (out.length < count && pool.length > 0) {
        out.push(...pool.splice(int(pool.length), 1));
      }
      return out;
    },
    /** Random text that cannot itself look like a leak when a response quotes it back. */
    text(length: number): string {
      for (;;) {
        const parts: string[] = [];
        for (let i = 0; i < length; i++) {
          parts.push(pick(TEXT_ALPHABET));
        }
        const text = parts.join("");
        if (leakIn(text) === undefined) {
          return text;
        }
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The OpenAPI document, read through narrow local types.

type JsonType = "string" | "number" | "integer" | "boolean" | "array" | "object" | "null";
const JSON_TYPES: readonly JsonType[] = ["string", "number", "integer", "boolean", "array", "object", "null"];

type Schema = {
  /** undefined: any JSON value is allowed. */
  types: ReadonlySet<JsonType> | undefined;
  properties: ReadonlyMap<string, Schema>;
  required: readonly string[];
  /** `additionalProperties: false`: unknown fields are refused. */
  closed: boolean;
  items: Schema | undefined;
  enumValues: readonly unknown[] | undefined;
  format: string | undefined;
  minLength: number | undefined;
  maxLength: number | undefined;
  minimum: number | undefined;
  maximum: number | undefined;
  example: unknown;
};

type Param = { name: string; schema: Schema };
/** An id parameter (`idPrefix`), or a catalog key such as a quota's (`key`: its documented example). */
type PathParam = { name: string; idPrefix: string } | { name: string; idPrefix: null; key: string };

type Operation = {
  name: string;
  method: string;
  path: string;
  /** The credentials that can act through the operation, so that fuzzing reaches past the guard. */
  callers: CredentialName[];
  pathParams: PathParam[];
  query: Param[];
  /** The JSON request body's schema, when the operation documents one. */
  body: Schema | undefined;
};

const HTTP_METHODS = ["get", "put", "post", "patch", "delete"] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

function isJsonType(value: unknown): value is JsonType {
  return JSON_TYPES.some((t) => t === value);
}

const ANY: Schema = {
  types: undefined,
  properties: new Map(),
  required: [],
  closed: false,
  items: undefined,
  enumValues: undefined,
  format: undefined,
  minLength: undefined,
  maximum: undefined,
  maxLength: undefined,
  minimum: undefined,
  example: undefined,
};

function createSchemaReader(document: Record<string, unknown>) {
  const components = isRecord(document.components) ? document.components : {};
  const schemas = isRecord(components.schemas) ? components.schemas : {};

  function read(raw: unknown, depth = 0): Schema {
    // Recursive schemas stop here; deeper than this, anything goes.
    if (!isRecord(raw) || depth > 10) {
      return ANY;
    }
    if (typeof raw.$ref === "string") {
      return read(schemas[raw.$ref.replace("#/components/schemas/", "")], depth + 1);
    }
    if (Array.isArray(raw.allOf) && raw.allOf.length > 0) {
      // Every part applies: their fields add up, and the value must be an object if any part says so.
      const parts = raw.allOf.map((part) => read(part, depth + 1));
      const typed = parts.find((part) => part.types !== undefined) ?? ANY;
      return {
        ...typed,
        properties: new Map(parts.flatMap((part) => [...part.properties])),
        required: parts.flatMap((part) => part.required),
        closed: parts.some((part) => part.closed),
        example: raw.example ?? typed.example,
      };
    }
    const alternatives = Array.isArray(raw.anyOf) ? raw.anyOf : Array.isArray(raw.oneOf) ? raw.oneOf : [];
    if (alternatives.length > 0) {
      // Any alternative may match: a value is of a wrong type only when no alternative allows it.
      const options = alternatives.map((a) => read(a, depth + 1));
      const types = new Set<JsonType>();
      for (const option of options) {
        if (option.types === undefined) {
          return { ...ANY, example: raw.example };
        }
        for (const type of option.types) {
          types.add(type);
        }
      }
      const shaped =
        options.find((option) => option.properties.size > 0 || option.items !== undefined) ??
        options[0] ??
        ANY;
      return { ...shaped, types, example: raw.example ?? shaped.example };
    }
    const rawTypes = Array.isArray(raw.type) ? raw.type : raw.type === undefined ? [] : [raw.type];
    const types = new Set(rawTypes.filter(isJsonType));
    const properties = new Map<string, Schema>();
    if (isRecord(raw.properties)) {
      for (const [name, prop] of Object.entries(raw.properties)) {
        properties.set(name, read(prop, depth + 1));
      }
      types.add("object");
    }
    return {
      types: types.size > 0 ? types : undefined,
      properties,
      required: Array.isArray(raw.required)
        ? raw.required.filter((r): r is string => typeof r === "string")
        : [],
      closed: raw.additionalProperties === false,
      items: raw.items === undefined ? undefined : read(raw.items, depth + 1),
      enumValues: Array.isArray(raw.enum) ? raw.enum : undefined,
      format: typeof raw.format === "string" ? raw.format : undefined,
      minLength: num(raw.minLength),
      maxLength: num(raw.maxLength),
      minimum: num(raw.minimum),
      maximum: num(raw.maximum),
      example: raw.example,
    };
  }
  return read;
}

function callersOf(access: unknown, pathParams: readonly PathParam[]): CredentialName[] {
  const kind = isRecord(access) ? access.kind : undefined;
  if (kind === "operator" || kind === "operator_or_user") {
    // An organization key is refused before validation (a signed-in user may also call these routes).
    return ["operator key"];
  }
  if (kind === "user") {
    // Keys are refused before validation on a signed-in user's route (accepting an invitation).
    return ["signed-in user"];
  }
  if (kind === "org" && !pathParams.some((p) => p.name === "org_id")) {
    // The credential's own organization (`/v1/organization`): an operator key belongs to none.
    return ["organization key"];
  }
  return ["operator key", "organization key"];
}

function discoverOperations(document: unknown): Operation[] {
  if (!isRecord(document) || !isRecord(document.paths)) {
    throw new Error("The OpenAPI document has no paths");
  }
  const read = createSchemaReader(document);
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith("/v1/") || !isRecord(item)) {
      continue;
    }
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isRecord(op)) {
        continue;
      }
      const name = `${method.toUpperCase()} ${path}`;
      const pathParams: PathParam[] = [];
      const query: Param[] = [];
      for (const p of Array.isArray(op.parameters) ? op.parameters : []) {
        if (!isRecord(p) || typeof p.name !== "string") {
          continue;
        }
        const schema = isRecord(p.schema) ? p.schema : {};
        if (p.in === "query") {
          query.push({ name: p.name, schema: read(schema) });
        } else if (p.in === "path") {
          const example = p.example ?? schema.example;
          const prefix =
            typeof example === "string" ? /^([a-z]+)_[0-9a-z]{26}$/.exec(example)?.[1] : undefined;
          if (prefix === undefined) {
            if (typeof example === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(example)) {
              pathParams.push({ name: p.name, idPrefix: null, key: example });
              continue;
            }
            throw new Error(`${name}: path parameter '${p.name}' has no id-shaped example (use idParam())`);
          }
          pathParams.push({ name: p.name, idPrefix: prefix });
        }
      }
      const content =
        isRecord(op.requestBody) && isRecord(op.requestBody.content) ? op.requestBody.content : {};
      const json = content["application/json"];
      const access = op["x-orgplane-access"];
      operations.push({
        name,
        method: method.toUpperCase(),
        path,
        callers: callersOf(access, pathParams),
        pathParams,
        query,
        body: isRecord(json) ? read(json.schema) : undefined,
      });
    }
  }
  return operations;
}

const operations = discoverOperations(JSON.parse(JSON.stringify(openApiDocument(buildApi()))));

// ---------------------------------------------------------------------------------------------------
// Values from schemas

function typeOf(value: unknown): JsonType {
  if (value === null) {
    return "null";
  }
  if (Array.isArray(value)) {
    return "array";
  }
  switch (typeof value) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "number":
      return Number.isInteger(value) ? "integer" : "number";
    default:
      return "object";
  }
}

function allowsType(schema: Schema, value: unknown): boolean {
  if (schema.types === undefined) {
    return true;
  }
  const type = typeOf(value);
  return schema.types.has(type) || (type === "integer" && schema.types.has("number"));
}

/** A valid value for the schema: its example, else the simplest value its constraints allow. */
function validValue(schema: Schema): unknown {
  if (schema.example !== undefined) {
    return schema.example;
  }
  if (schema.enumValues !== undefined && schema.enumValues.length > 0) {
    return schema.enumValues[0];
  }
  const types = schema.types ?? new Set<JsonType>(["string"]);
  if (types.has("object")) {
    return Object.fromEntries(
      schema.required.map((name) => [name, validValue(schema.properties.get(name) ?? ANY)]),
    );
  }
  if (types.has("string")) {
    switch (schema.format) {
      case "email":
        return "fuzz@example.com";
      case "uri":
        return "https://example.com/fuzz";
      case "date-time":
        // A day ahead: fields like expires_at must lie in the future.
        return new Date(Date.now() + 86_400_000).toISOString();
      default:
        return "fuzz".padEnd(schema.minLength ?? 0, "z");
    }
  }
  if (types.has("integer") || types.has("number")) {
    return schema.minimum ?? 1;
  }
  if (types.has("boolean")) {
    return false;
  }
  if (types.has("array")) {
    return [];
  }
  return null;
}

type FieldPath = readonly string[];

/** Every property under the schema, depth first, with its path. */
function fields(schema: Schema, prefix: FieldPath = []): { path: FieldPath; schema: Schema }[] {
  const out: { path: FieldPath; schema: Schema }[] = [];
  for (const [name, prop] of schema.properties) {
    const path = [...prefix, name];
    out.push({ path, schema: prop }, ...fields(prop, path));
  }
  return out;
}

/** A copy of `base` with `value` at `path`, creating the objects on the way. */
function withValue(base: unknown, path: FieldPath, value: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) {
    return value;
  }
  const object = isRecord(base) ? { ...base } : {};
  object[head] = withValue(object[head], rest, value);
  return object;
}

function label(path: FieldPath): string {
  return path.length === 0 ? "the body" : path.join(".");
}

// ---------------------------------------------------------------------------------------------------
// Checking a response

/** Text that must never reach a client: stacks, driver messages, connection strings. */
const LEAKS: readonly [string, RegExp][] = [
  ["a stack trace", /\n\s+at |\bat [\w$.<>]+ \([^)]*:\d+:\d+\)|node:internal|node_modules|\.ts:\d+:\d+/],
  [
    "a PostgreSQL or driver message",
    /syntax error at or near|duplicate key|violates .* constraint|invalid input syntax|invalid byte sequence|unsupported Unicode escape|relation "[^"]*" does not exist|SQLSTATE|DatabaseError|\bpg\b|postgres|drizzle/i,
  ],
];

function leakIn(text: string): string | undefined {
  return LEAKS.find(([, pattern]) => pattern.test(text))?.[0];
}

type Expectation = {
  /** Acceptable statuses; any 4xx when absent. */
  statuses?: readonly number[];
  codes?: readonly string[];
  /** Hostile but well-formed input: a 2xx is a fine answer too. */
  successAllowed?: boolean;
};

const BAD_REQUEST: Expectation = { statuses: [400], codes: ["validation_failed"] };

type Case = { label: string; url: string; options: RequestOptions; expect: Expectation };

type CredentialName = "operator key" | "organization key" | "signed-in user";
/** A credential and the organization it acts on. */
type Caller = { key: string; orgId: string };

let t: TestContext;
/** Each credential acts on an organization of its own, so whatever one changes, the other never sees. */
let callers: Record<CredentialName, Caller>;

beforeAll(async () => {
  t = await createTestContext();
  const operatorOrg = await t.createOrg();
  const { org, key } = await t.createOrgWithKey();
  callers = {
    "operator key": { key: t.operatorKey, orgId: operatorOrg.id },
    "organization key": { key, orgId: org.id },
    "signed-in user": { key: (await t.signIn()).token, orgId: org.id },
  };
});
afterAll(() => t.close());

/** What is wrong with the response, or undefined when it keeps the promise. */
function verdict(res: TestResponse, expectation: Expectation): string | undefined {
  const leak = leakIn(res.text);
  if (leak !== undefined) {
    return `the body contains ${leak}`;
  }
  for (const { key } of Object.values(callers)) {
    if (res.text.includes(key)) {
      return "the body contains an API key";
    }
  }
  if (res.status >= 200 && res.status < 300 && expectation.successAllowed === true) {
    return undefined;
  }
  if (res.status < 400 || res.status >= 500) {
    return `HTTP ${res.status}, expected a 4xx`;
  }
  if (!(res.headers.get("content-type") ?? "").startsWith("application/problem+json")) {
    return `content type ${res.headers.get("content-type")}, expected application/problem+json`;
  }
  const body: unknown = res.body;
  const code = isRecord(body) ? body.code : undefined;
  const requestId = isRecord(body) ? body.request_id : undefined;
  if (typeof code !== "string" || typeof requestId !== "string" || requestId === "") {
    return "the problem document lacks a code or a request_id";
  }
  if (expectation.statuses !== undefined && !expectation.statuses.includes(res.status)) {
    return `HTTP ${res.status} ${code}, expected ${expectation.statuses.join(" or ")}`;
  }
  if (expectation.codes !== undefined && !expectation.codes.includes(code)) {
    return `code ${code}, expected ${expectation.codes.join(" or ")}`;
  }
  return undefined;
}

async function run(op: Operation, cases: readonly Case[]): Promise<void> {
  expect(cases.length, "no cases were generated").toBeGreaterThan(0);
  const failures: string[] = [];
  for (const c of cases) {
    const res = await t.request(op.method, c.url, c.options);
    const problem = verdict(res, c.expect);
    if (problem !== undefined) {
      failures.push(`${c.label} → ${problem}: ${res.text.slice(0, 300)}`);
    }
  }
  expect(failures, `${failures.length} of ${cases.length} cases broke the promise`).toEqual([]);
}

// ---------------------------------------------------------------------------------------------------
// Building requests

function urlFor(op: Operation, caller: Caller, override?: { param: string; raw: string }): string {
  let url = op.path;
  for (const param of op.pathParams) {
    const value =
      override?.param === param.name
        ? override.raw
        : encodeURIComponent(
            param.name === "org_id"
              ? caller.orgId
              : param.idPrefix === null
                ? `${param.key}_unknown`
                : typeid(param.idPrefix).toString(),
          );
    url = url.replace(`{${param.name}}`, value);
  }
  return url;
}

function jsonBody(caller: Caller, text: string, contentType = "application/json"): RequestOptions {
  return { key: caller.key, rawBody: text, headers: { "Content-Type": contentType } };
}

/** The smallest body the operation accepts, so that one deliberate flaw is the only one. */
function minimalBody(op: Operation): unknown {
  return op.body === undefined ? {} : validValue(op.body);
}

function hasBody(op: Operation): boolean {
  return op.method !== "GET";
}

/** Would the server's body reader see this as malformed JSON (it decodes as UTF-8, dropping a BOM)? */
function isMalformedJson(text: string): boolean {
  const decoded = new TextDecoder().decode(new TextEncoder().encode(text));
  if (decoded.trim() === "") {
    return false;
  }
  try {
    JSON.parse(decoded);
    return false;
  } catch {
    return true;
  }
}

const MALFORMED_JSON = [
  "{",
  "}",
  '{"name":',
  "{'name': 'x'}",
  '{"name": "x",}',
  "{name: 1}",
  "[1, 2",
  "NaN",
  "undefined",
  '{"a": 1}}',
  '{"a": "\\x"}',
  '"unterminated',
  '{"a": 01}',
  "{}garbage",
  "nul",
];

function malformedCases(op: Operation, caller: Caller, random: Random): Case[] {
  const valid = JSON.stringify(minimalBody(op));
  const mutated: string[] = [];
  while (mutated.length < 6) {
    const at = random.int(valid.length + 1);
    const candidate =
      random.int(2) === 0
        ? valid.slice(0, at)
        : `${valid.slice(0, at)}${random.pick(["{", "}", "[", "]", ",", ":", '"', "\\"])}${valid.slice(at)}`;
    if (isMalformedJson(candidate)) {
      mutated.push(candidate);
    }
  }
  return [...MALFORMED_JSON, ...mutated].filter(isMalformedJson).map((text) => ({
    label: `body ${JSON.stringify(text.slice(0, 60))}`,
    url: urlFor(op, caller),
    options: jsonBody(caller, text),
    expect: { statuses: [400], codes: ["malformed_json"] },
  }));
}

const TOP_LEVEL_WRONG = [[], [{}], 0, 42, -1.5, "a string", "{}", null, true, false];
const FIELD_WRONG = [
  12_345,
  -1.5,
  0,
  true,
  false,
  "true",
  "123",
  [],
  ["x"],
  {},
  { nested: { deeper: "x" } },
  null,
];

function wrongTypeCases(op: Operation, body: Schema, caller: Caller, random: Random): Case[] {
  const base = minimalBody(op);
  const url = urlFor(op, caller);
  const cases: Case[] = TOP_LEVEL_WRONG.filter((v) => !allowsType(body, v)).map((value) => ({
    label: `body ${JSON.stringify(value)}`,
    url,
    options: jsonBody(caller, JSON.stringify(value)),
    expect: BAD_REQUEST,
  }));
  for (const field of fields(body)) {
    const wrong = FIELD_WRONG.filter((v) => !allowsType(field.schema, v));
    for (const value of random.sample(wrong, 2)) {
      cases.push({
        label: `${label(field.path)} = ${JSON.stringify(value)}`,
        url,
        options: jsonBody(caller, JSON.stringify(withValue(base, field.path, value))),
        expect: BAD_REQUEST,
      });
    }
  }
  return cases;
}

function unknownFieldCases(op: Operation, body: Schema, caller: Caller): Case[] {
  const base = minimalBody(op);
  const url = urlFor(op, caller);
  const objects = [{ path: [] as FieldPath, schema: body }, ...fields(body)].filter((f) => f.schema.closed);
  const cases: Case[] = objects.map((f) => ({
    label: `unknown field under ${label(f.path)}`,
    url,
    options: jsonBody(caller, JSON.stringify(withValue(base, [...f.path, "unknown_field"], 1))),
    expect: BAD_REQUEST,
  }));
  if (body.closed) {
    // JSON.parse makes these own properties; they are unknown fields like any other, not prototypes.
    const inner = JSON.stringify(base).slice(1);
    const comma = inner === "}" ? "" : ",";
    for (const poison of [
      '"__proto__": {"is_admin": true}',
      '"constructor": {"prototype": {"is_admin": true}}',
    ]) {
      cases.push({
        label: `body with ${poison}`,
        url,
        options: jsonBody(caller, `{${poison}${comma}${inner}`),
        expect: BAD_REQUEST,
      });
    }
  }
  return cases;
}

function hugeStringCases(op: Operation, body: Schema, caller: Caller, random: Random): Case[] {
  const base = minimalBody(op);
  const url = urlFor(op, caller);
  const huge = random.text(HUGE_STRING_CHARS);
  const cases: Case[] = [];
  let everyString = base;
  for (const field of fields(body)) {
    const types = field.schema.types;
    if (types?.has("string") === true) {
      everyString = withValue(everyString, field.path, huge);
      cases.push({
        label: `${label(field.path)} = ${HUGE_STRING_CHARS} characters`,
        url,
        options: jsonBody(caller, JSON.stringify(withValue(base, field.path, huge))),
        expect: BAD_REQUEST,
      });
    }
    if (types?.has("array") === true && field.schema.items?.types?.has("string") === true) {
      cases.push({
        label: `${label(field.path)} = [${HUGE_STRING_CHARS} characters]`,
        url,
        options: jsonBody(caller, JSON.stringify(withValue(base, field.path, [huge]))),
        expect: BAD_REQUEST,
      });
    }
    if (types?.has("object") === true && !field.schema.closed && field.schema.properties.size === 0) {
      // A free-form object: neither its keys nor its values may be unbounded.
      for (const [what, value] of [
        ["key", { [huge]: 1 }],
        ["value", { note: huge }],
      ] as const) {
        cases.push({
          label: `${label(field.path)} with a ${HUGE_STRING_CHARS}-character ${what}`,
          url,
          options: jsonBody(caller, JSON.stringify(withValue(base, field.path, value))),
          expect: BAD_REQUEST,
        });
      }
    }
  }
  // A body whose only text is a free-form object's keys (rate limits by category) has no string field to fill.
  if (everyString !== base) {
    cases.push({
      label: `every string field at ${HUGE_STRING_CHARS} characters at once`,
      url,
      options: jsonBody(caller, JSON.stringify(everyString)),
      expect: { statuses: [400, 413] },
    });
  }
  return cases;
}

/** PostgreSQL stores no NUL character in text or jsonb: such input must be refused, not crash a query. */
function unstorableTextCases(op: Operation, body: Schema, caller: Caller, random: Random): Case[] {
  const base = minimalBody(op);
  const url = urlFor(op, caller);
  const strings = fields(body).filter((f) => f.schema.types?.has("string") === true);
  const objects = fields(body).filter(
    (f) => f.schema.types?.has("object") === true && !f.schema.closed && f.schema.properties.size === 0,
  );
  const cases: Case[] = random.sample(strings, 6).map((f) => ({
    label: `${label(f.path)} containing NUL`,
    url,
    options: jsonBody(caller, JSON.stringify(withValue(base, f.path, "fu\u0000zz"))),
    expect: BAD_REQUEST,
  }));
  for (const f of objects) {
    cases.push(
      {
        label: `${label(f.path)} with a NUL in a value`,
        url,
        options: jsonBody(caller, JSON.stringify(withValue(base, f.path, { note: "fu\u0000zz" }))),
        expect: BAD_REQUEST,
      },
      {
        label: `${label(f.path)} with a NUL in a key`,
        url,
        options: jsonBody(caller, JSON.stringify(withValue(base, f.path, { "no\u0000te": 1 }))),
        expect: BAD_REQUEST,
      },
    );
  }
  return cases;
}

function deepNestingCases(op: Operation, caller: Caller): Case[] {
  const url = urlFor(op, caller);
  const arrays = `${"[".repeat(DEEP_NESTING)}${"]".repeat(DEEP_NESTING)}`;
  const objects = `${'{"a":'.repeat(DEEP_NESTING)}1${"}".repeat(DEEP_NESTING)}`;
  const base = minimalBody(op);
  const firstField = op.body === undefined ? undefined : [...op.body.properties.keys()][0];
  const inField =
    firstField === undefined
      ? undefined
      : JSON.stringify(withValue(base, [firstField], "__deep__")).replace('"__deep__"', objects);
  return [
    ["arrays", arrays],
    ["objects", objects],
    ...(inField === undefined ? [] : [[`objects in ${firstField}`, inField] as const]),
  ].map(([what, text]) => ({
    label: `${DEEP_NESTING} levels of ${what}`,
    url,
    options: jsonBody(caller, text),
    expect: BAD_REQUEST,
  }));
}

function oversizeCases(op: Operation, caller: Caller, random: Random): Case[] {
  const url = urlFor(op, caller);
  const valid = JSON.stringify({ ...asObject(minimalBody(op)), padding: "x".repeat(MAX_BODY_BYTES) });
  const garbage = random.text(64).repeat(Math.ceil(MAX_BODY_BYTES / 64) + 1);
  const justOver = JSON.stringify({ padding: "" }).length;
  const exact = JSON.stringify({ padding: "y".repeat(MAX_BODY_BYTES + 1 - justOver) });
  const tooLarge: Expectation = { statuses: [413], codes: ["payload_too_large"] };
  return [
    { label: "valid JSON over 1 MiB", url, options: jsonBody(caller, valid), expect: tooLarge },
    { label: "one byte over 1 MiB", url, options: jsonBody(caller, exact), expect: tooLarge },
    { label: "garbage over 1 MiB", url, options: jsonBody(caller, garbage), expect: tooLarge },
    { label: "text/plain over 1 MiB", url, options: jsonBody(caller, valid, "text/plain"), expect: tooLarge },
  ];
}

function asObject(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

const NOT_JSON: readonly [string, string][] = [
  ["text/plain", "{}"],
  ["text/plain; charset=utf-8", '{"name": "fuzz"}'],
  ["application/x-www-form-urlencoded", "name=fuzz&slug=fuzz"],
  [
    "multipart/form-data; boundary=fuzz",
    '--fuzz\r\nContent-Disposition: form-data; name="name"\r\n\r\nfuzz\r\n--fuzz--',
  ],
  ["application/xml", "<organization><name>fuzz</name></organization>"],
  ["text/html", "<script>alert(1)</script>"],
  ["application/octet-stream", "\u0001\u0002\u0003"],
  ["application/jsonp", "{}"],
  ["application/x-json", "{}"],
  ["json", "{}"],
];

function mediaTypeCases(op: Operation, caller: Caller): Case[] {
  const url = urlFor(op, caller);
  return NOT_JSON.map(([type, text]) => ({
    label: `Content-Type: ${type}`,
    url,
    options: jsonBody(caller, text, type),
    expect: { statuses: [415], codes: ["unsupported_media_type"] },
  }));
}

/** Ids put in the path percent-encoded, as a client library would. */
const ODD_IDS = [
  "",
  " ",
  "null",
  "undefined",
  "0",
  "-1",
  "a".repeat(10_000),
  "_",
  "ünïcødé",
  "😀😀",
  "\u202eevil",
  "../",
  "../../etc/passwd",
  "..",
  ".",
  "' or 1=1--",
  "'; drop table organizations; --",
  "%",
  "\u0000",
  "\n",
  "\\",
  "{org_id}",
];

/** Segments put in the path as they are: bytes a hand-written URL can carry. */
const RAW_SEGMENTS = ["%00", "%ff", "%C0%AF", "%2e%2e%2f", "%252e%252e", "%E2%80%AE", "%uD800", "%"];

const NOT_FOUND: Expectation = { statuses: [404], codes: ["not_found", "route_not_found"] };

function oddIdCases(op: Operation, param: PathParam, caller: Caller, random: Random): Case[] {
  const encoded =
    param.idPrefix === null ? oddKeys(param.key, random) : oddIds(param.name, param.idPrefix, caller, random);
  const body = op.body === undefined || !hasBody(op) ? {} : { body: minimalBody(op) };
  return [
    ...encoded.map((id) => ({ shown: JSON.stringify(id.slice(0, 40)), raw: encodeURIComponent(id) })),
    ...RAW_SEGMENTS.map((raw) => ({ shown: `raw ${raw}`, raw })),
  ].map(({ shown, raw }) => ({
    label: `${param.name} ${shown}`,
    url: urlFor(op, caller, { param: param.name, raw }),
    options: { key: caller.key, ...body },
    expect: NOT_FOUND,
  }));
}

function oddIds(name: string, idPrefix: string, caller: Caller, random: Random): string[] {
  const realId = name === "org_id" ? caller.orgId : typeid(idPrefix).toString();
  const otherPrefix = idPrefix === "org" ? "key" : "org";
  return [
    ...ODD_IDS,
    `${idPrefix}_`,
    typeid(otherPrefix).toString(),
    `${otherPrefix}_${realId.slice(idPrefix.length + 1)}`,
    realId.toUpperCase(),
    `${realId}x`,
    realId.slice(0, -1),
    ` ${realId}`,
    `${realId} `,
    // A TypeID suffix may not start above 7: this one overflows 128 bits.
    `${idPrefix}_8zzzzzzzzzzzzzzzzzzzzzzzzz`,
    `${idPrefix}_01jd0v4n6qf9yb5c8h2m3k7x1z`,
    ...Array.from({ length: 4 }, () => random.text(1 + random.int(80))),
  ];
}

/** A catalog key that names nothing: what no catalog holds, including names JavaScript objects carry. */
function oddKeys(key: string, random: Random): string[] {
  return [
    ...ODD_IDS,
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    key.toUpperCase(),
    `${key}x`,
    ` ${key}`,
    `${key} `,
    "a".repeat(300),
    ...Array.from({ length: 4 }, () => random.text(1 + random.int(80))),
  ];
}

function base64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

/** Values the parameter's documented schema refuses. */
function invalidQueryValues(param: Param, random: Random): string[] {
  const s = param.schema;
  if (param.name === "cursor") {
    return [
      "garbage",
      "!!!",
      "x".repeat(300),
      "",
      base64url(`{"after":"' or 1=1--"}`),
      base64url('{"after":1}'),
      base64url('{"after":"org_01jd0v4n6qf9yb5c8h2m3k7x1z","x":"'.concat("y".repeat(200), '"}')),
      base64url("null"),
      base64url("{}"),
      base64url("[]"),
      base64url(random.text(20)),
    ];
  }
  if (s.enumValues !== undefined) {
    const first = String(s.enumValues[0] ?? "");
    return ["bogus", "", first.toUpperCase(), `${first} `].filter((v) => !s.enumValues?.includes(v));
  }
  const types = s.types ?? new Set<JsonType>();
  if (types.has("integer") || types.has("number")) {
    const values = ["abc", "NaN", "Infinity", "-0x1", "9".repeat(400), "1e9", "[]"];
    if (types.has("integer") && !types.has("number")) {
      values.push("1.5");
    }
    if (s.minimum !== undefined) {
      values.push(String(s.minimum - 1), "-1");
      if (s.minimum > 0) {
        values.push("", "0");
      }
    }
    if (s.maximum !== undefined) {
      values.push(String(s.maximum + 1));
    }
    return [...new Set(values)].filter((v) => {
      const n = Number(v);
      return (
        !Number.isFinite(n) ||
        (s.minimum !== undefined && n < s.minimum) ||
        (s.maximum !== undefined && n > s.maximum) ||
        (types.has("integer") && !Number.isInteger(n))
      );
    });
  }
  const values: string[] = [];
  if (s.format === "date-time") {
    values.push("yesterday", "2024-13-45T00:00:00Z", "2024-01-01", "0", "' or 1=1--");
  }
  if (s.maxLength !== undefined) {
    values.push("x".repeat(s.maxLength + 1));
  }
  if ((s.minLength ?? 0) > 0) {
    values.push("");
  }
  return values;
}

function invalidQueryCases(op: Operation, caller: Caller, random: Random): Case[] {
  const url = urlFor(op, caller);
  const bad: Expectation = { statuses: [400], codes: ["validation_failed", "invalid_cursor"] };
  const cases: Case[] = [];
  for (const param of op.query) {
    for (const value of invalidQueryValues(param, random)) {
      cases.push({
        label: `?${param.name}=${JSON.stringify(value.slice(0, 40))}`,
        url: `${url}?${new URLSearchParams({ [param.name]: value })}`,
        options: { key: caller.key },
        expect: bad,
      });
    }
  }
  for (const extra of ["unknown_param=1", "LIMIT=10", "limit[]=1", `${random.text(8)}=1`]) {
    cases.push({
      label: `?${extra}`,
      url: `${url}?${encodeQuery(extra)}`,
      options: { key: caller.key },
      expect: bad,
    });
  }
  return cases;
}

/**
 * Keep `name=value` as written but encode what a URL cannot carry raw. The value follows the last "=", so a
 * random name that holds "=" stays one (non-empty, unknown) name rather than an empty one.
 */
function encodeQuery(pair: string): string {
  const at = pair.lastIndexOf("=");
  const [name, value] = at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  return `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
}

const HOSTILE_TEXT = [
  "' or 1=1--",
  "'; drop table organizations; --",
  "\u0000",
  "fu\u0000zz",
  "%_\\",
  "ünïcødé😀",
  "\u202e",
  '"}]',
];

/** Hostile but well-formed: a free-text filter may match nothing, but must never break the query. */
function hostileQueryCases(op: Operation, caller: Caller): Case[] {
  const url = urlFor(op, caller);
  const ok: Expectation = { successAllowed: true };
  const cases: Case[] = [];
  const freeText = op.query.filter(
    (p) =>
      p.schema.types?.has("string") === true &&
      p.schema.enumValues === undefined &&
      p.schema.format === undefined,
  );
  for (const param of freeText) {
    for (const value of HOSTILE_TEXT) {
      cases.push({
        label: `?${param.name}=${JSON.stringify(value)}`,
        url: `${url}?${new URLSearchParams({ [param.name]: value })}`,
        options: { key: caller.key },
        expect: ok,
      });
    }
  }
  for (const query of ["__proto__=1", "constructor=1", "limit=10&limit=20", "&&&", "=", "a=%ZZ", "%00=%00"]) {
    cases.push({ label: `?${query}`, url: `${url}?${query}`, options: { key: caller.key }, expect: ok });
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------------

describe("the fuzz suite covers every /v1 operation", () => {
  it("finds the operations in the OpenAPI document", () => {
    expect(operations.length).toBeGreaterThan(0);
  });

  it("refuses a streamed body over 1 MiB without Content-Length: 413 payload_too_large", async () => {
    const chunk = new TextEncoder().encode(`"${"z".repeat(64 * 1024)}",`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES * 2) {
          controller.close();
          return;
        }
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const res = await t.app.request("/v1/organizations", {
      method: "POST",
      headers: { Authorization: `Bearer ${t.operatorKey}`, "Content-Type": "application/json" },
      body: stream,
      duplex: "half",
    });
    const text = await res.text();
    expect(res.status, text).toBe(413);
    expect(JSON.parse(text)).toMatchObject({ code: "payload_too_large" });
  });
});

describe.each(operations.map((op) => [op.name, op] as const))("%s", (_name, op) => {
  const each = it.each(op.callers);
  const stream = (who: CredentialName, what: string) => createRandom(`${op.name}|${who}|${what}`);
  const caller = (who: CredentialName): Caller => callers[who];

  if (hasBody(op)) {
    each("with the %s: refuses malformed JSON with 400 malformed_json", (who) =>
      run(op, malformedCases(op, caller(who), stream(who, "malformed"))),
    );
    each("with the %s: refuses JSON nested 10,000 levels deep with 400", (who) =>
      run(op, deepNestingCases(op, caller(who))),
    );
    each("with the %s: refuses bodies over 1 MiB with 413 payload_too_large", (who) =>
      run(op, oversizeCases(op, caller(who), stream(who, "oversize"))),
    );
    each("with the %s: refuses bodies that are not JSON with 415 unsupported_media_type", (who) =>
      run(op, mediaTypeCases(op, caller(who))),
    );
  }

  const body = op.body;
  if (hasBody(op) && body !== undefined) {
    each("with the %s: refuses bodies and fields of the wrong JSON type with 400", (who) =>
      run(op, wrongTypeCases(op, body, caller(who), stream(who, "wrong-type"))),
    );
    each("with the %s: refuses unknown fields with 400", (who) =>
      run(op, unknownFieldCases(op, body, caller(who))),
    );
  }
  // A body of numbers and flags only (rotating a key) has no text to make huge or unstorable.
  if (
    hasBody(op) &&
    body !== undefined &&
    fields(body).some((f) => (["string", "array", "object"] as const).some((t) => f.schema.types?.has(t)))
  ) {
    each(`with the %s: refuses ${HUGE_STRING_CHARS}-character strings in every string field`, (who) =>
      run(op, hugeStringCases(op, body, caller(who), stream(who, "huge"))),
    );
    each("with the %s: refuses text PostgreSQL cannot store (NUL) with 400", (who) =>
      run(op, unstorableTextCases(op, body, caller(who), stream(who, "nul"))),
    );
  }

  for (const param of op.pathParams) {
    each(`with the %s: answers odd ${param.name} values with 404`, (who) =>
      run(op, oddIdCases(op, param, caller(who), stream(who, `ids:${param.name}`))),
    );
  }

  if (op.method === "GET" && op.query.length > 0) {
    each("with the %s: refuses odd query values with 400", (who) =>
      run(op, invalidQueryCases(op, caller(who), stream(who, "query"))),
    );
  }
  if (op.method === "GET") {
    each("with the %s: answers hostile but well-formed query text without a server error", (who) =>
      run(op, hostileQueryCases(op, caller(who))),
    );
  }
});
