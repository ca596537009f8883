import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSecretBox, generateSecretKey, parseSecretKeys, SecretKeyError } from "./secret-box.ts";

const keyText = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;

describe("parseSecretKeys", () => {
  it("reads one or more <key-id>:<base64 of 32 bytes>, the first first", () => {
    const [a, b] = [keyText("k2"), keyText("k1")];
    const keys = parseSecretKeys(` ${a} , ${b} `);
    expect(keys.map((k) => k.id)).toEqual(["k2", "k1"]);
    expect(keys.every((k) => k.key.length === 32)).toBe(true);
    expect(parseSecretKeys(generateSecretKey())[0]?.id).toMatch(/^local-[0-9a-f]{8}$/);
  });

  it("refuses malformed keys with a message that holds no key material", () => {
    const short = `k1:${randomBytes(16).toString("base64")}`;
    const cases: [string, RegExp][] = [
      ["", /at least one/],
      [randomBytes(32).toString("base64"), /<key-id>:<base64 of 32 bytes>/],
      [short, /16 bytes; AES-256 needs 32/],
      [`k1:not base64!`, /not base64/],
      [`bad id:${randomBytes(32).toString("base64")}`, /key id/],
      [`${keyText("k1")},${keyText("k1")}`, /twice/],
    ];
    for (const [text, message] of cases) {
      let thrown: unknown;
      try {
        parseSecretKeys(text);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, text).toBeInstanceOf(SecretKeyError);
      const shown = (thrown as Error).message;
      expect(shown).toMatch(message);
      for (const part of text.split(/[:,]/)) {
        if (part.length >= 8) {
          expect(shown, "the message does not echo the key").not.toContain(part);
        }
      }
    }
  });
});

describe("createSecretBox", () => {
  it("seals to v1:<key-id>:<iv>:<ciphertext> and opens it again; each seal differs", () => {
    const box = createSecretBox(parseSecretKeys(keyText("k1")));
    const a = box.seal("glc_secret-token-value", "ctx");
    const b = box.seal("glc_secret-token-value", "ctx");
    expect(a).toMatch(/^v1:k1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain("secret-token");
    expect(box.open(a, "ctx")).toBe("glc_secret-token-value");
    expect(box.open(b, "ctx")).toBe("glc_secret-token-value");
    expect(box.keyIdOf(a)).toBe("k1");
    expect(box.keyIdOf("plain")).toBeUndefined();
  });

  it("rotates: the first key seals, every listed key opens", () => {
    const [oldKey, newKey] = [keyText("old"), keyText("new")];
    const before = createSecretBox(parseSecretKeys(oldKey));
    const sealedOld = before.seal("token-1", "ctx");
    const after = createSecretBox(parseSecretKeys(`${newKey},${oldKey}`));
    expect(after.currentKeyId).toBe("new");
    expect(after.open(sealedOld, "ctx"), "the old key id still opens").toBe("token-1");
    const sealedNew = after.seal("token-2", "ctx");
    expect(after.keyIdOf(sealedNew), "new writes use the first key").toBe("new");
    expect(() => before.open(sealedNew, "ctx")).toThrow(
      /key id 'new', which ORGPLANE_SECRET_KEY does not hold/,
    );
  });

  it("refuses a tampered ciphertext, another context, and a different key under the same id (GCM)", () => {
    const box = createSecretBox(parseSecretKeys(keyText("k1")));
    const sealed = box.seal("token", "org_integrations:org_a:loki");
    const [v, id, iv, data] = sealed.split(":") as [string, string, string, string];
    const bytes = Buffer.from(data, "base64");
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    expect(() =>
      box.open(`${v}:${id}:${iv}:${bytes.toString("base64")}`, "org_integrations:org_a:loki"),
    ).toThrow(/does not open under key id 'k1'/);
    const tag = Buffer.from(data, "base64");
    tag[tag.length - 1] = (tag[tag.length - 1] ?? 0) ^ 1;
    expect(() =>
      box.open(`${v}:${id}:${iv}:${tag.toString("base64")}`, "org_integrations:org_a:loki"),
    ).toThrow();
    expect(() => box.open(sealed, "org_integrations:org_b:loki"), "copied into another row").toThrow();
    const impostor = createSecretBox(parseSecretKeys(keyText("k1")));
    expect(() => impostor.open(sealed, "org_integrations:org_a:loki")).toThrow(/does not open/);
    expect(() => box.open("v1:k1:short", "x")).toThrow(/not a v1 ciphertext/);
  });
});
