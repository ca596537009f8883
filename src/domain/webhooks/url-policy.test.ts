import { describe, expect, it } from "vitest";
import { AppError } from "../../lib/errors.ts";
import { checkEndpointUrl, isNonPublicAddress } from "./url-policy.ts";

describe("isNonPublicAddress", () => {
  it.each([
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "10.0.0.1",
    "100.64.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "198.18.0.1",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%eth0",
    "ff02::1",
    "2001:db8::1",
    "::127.0.0.1",
  ])("%s is not public", (address) => {
    expect(isNonPublicAddress(address)).toBe(true);
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "169.255.0.1",
    "2606:4700:4700::1111",
    "[2a00:1450:4007:80e::200e]",
    "::ffff:8.8.8.8",
    "2001:4860:4860:0:0:0:0:8888",
  ])("%s is public", (address) => {
    expect(isNonPublicAddress(address)).toBe(false);
  });

  it.each(["example.com", "localhost", "1.2.3", "1.2.3.256", "1:2:3", "1::2::3", "12345::"])(
    "%s is not an IP literal",
    (text) => {
      expect(isNonPublicAddress(text)).toBeUndefined();
    },
  );
});

describe("checkEndpointUrl", () => {
  function refusal(url: string, allowPrivate = false): string | undefined {
    try {
      checkEndpointUrl(url, { allowPrivate });
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).errors?.[0]?.path).toBe("url");
      return (err as AppError).errors?.[0]?.message;
    }
  }

  it("keeps public https URLs, normalised", () => {
    expect(checkEndpointUrl("https://Hooks.Example.com/a?b=c", { allowPrivate: false })).toBe(
      "https://hooks.example.com/a?b=c",
    );
  });

  it("refuses http, private and local hosts unless private addresses are allowed", () => {
    for (const url of [
      "http://hooks.example.com/",
      "https://localhost/",
      "https://LOCALHOST./",
      "https://a.b.localhost/",
      "https://127.1/",
      "https://2130706433/",
      "https://[::ffff:10.0.0.1]/",
    ]) {
      expect(refusal(url), url).toBeDefined();
      expect(refusal(url, true), url).toBeUndefined();
    }
  });

  it("refuses what is never a webhook URL, private addresses allowed or not", () => {
    for (const url of [
      "",
      "/relative",
      "mailto:a@b.c",
      "https://u:p@example.com/",
      "https://",
      "javascript:1",
    ]) {
      expect(refusal(url, true), url).toBeDefined();
    }
    expect(refusal(`https://example.com/${"x".repeat(2040)}`, true)).toMatch(/2048/);
  });
});
