/** Secrets at rest: sealed values do not show the secret, open with any listed key, and rotate. */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SealError, SecretBox } from "./sealed.js";

const k1 = randomBytes(32).toString("base64");
const k2 = randomBytes(32).toString("hex");

describe("SecretBox", () => {
  it("seals so that the stored value does not contain the secret, and opens it again", () => {
    const box = new SecretBox(k1, "KEYS");
    const sealed = box.seal("correct-horse", "alice/sasl");
    expect(sealed).not.toContain("correct-horse");
    expect(sealed.startsWith("sealed:1:")).toBe(true);
    expect(box.seal("correct-horse", "alice/sasl")).not.toBe(sealed); // a fresh nonce each time
    expect(box.open(sealed, "alice/sasl")).toBe("correct-horse");
  });

  it("does not open for another context, nor when altered", () => {
    const box = new SecretBox(k1, "KEYS");
    const sealed = box.seal("pw", "alice/sasl");
    expect(() => box.open(sealed, "mallory/sasl")).toThrow(SealError);
    const parts = sealed.split(":");
    parts[5] = Buffer.from("xx").toString("base64url");
    expect(() => box.open(parts.join(":"), "alice/sasl")).toThrow(SealError);
  });

  it("rotates: the first key seals, the older keys listed still open, a value sealed with an old key is stale", () => {
    const old = new SecretBox(k1, "KEYS");
    const sealedOld = old.seal("pw", "c");
    const rotated = new SecretBox(`${k2},${k1}`, "KEYS");
    expect(rotated.open(sealedOld, "c")).toBe("pw");
    expect(rotated.stale(sealedOld)).toBe(true);
    const sealedNew = rotated.seal("pw", "c");
    expect(rotated.stale(sealedNew)).toBe(false);
    expect(rotated.stale("plain text")).toBe(true);
    // Once the old key is dropped, only what it sealed no longer opens.
    const only = new SecretBox(k2, "KEYS");
    expect(only.open(sealedNew, "c")).toBe("pw");
    expect(() => only.open(sealedOld, "c")).toThrow(/not among the configured keys/);
  });

  it("refuses a key of the wrong size or encoding, naming the variable and not the key", () => {
    expect(() => new SecretBox("c2hvcnQ=", "GATEWAY_IRC_KEYS")).toThrow(/GATEWAY_IRC_KEYS: key 1/);
    expect(() => new SecretBox(`${k1},nothex!`, "K")).toThrow(/K: key 2/);
    expect(() => new SecretBox("", "K")).toThrow(SealError);
  });
});
