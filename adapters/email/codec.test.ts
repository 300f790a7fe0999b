import { refusal } from "../../test/support/refusal.js";
import { describe, expect, it } from "vitest";
import { checkLocalPart, emailCodec } from "./codec.js";

describe("email codec: JID localparts", () => {
  it.each([
    ["friend\\40example.com", "friend@example.com"],
    ["first.last\\40mail.example.co.uk", "first.last@mail.example.co.uk"],
    ["o\\27brien\\40example.com", "o'brien@example.com"],
    ["a+tag\\40example.com", "a+tag@example.com"],
    ["x\\2fy\\26z\\40example.com", "x/y&z@example.com"],
  ])("decodes %s to %s and encodes it back", (local, address) => {
    expect(emailCodec.decode(local)).toBe(address);
    expect(emailCodec.encode(address)).toBe(local);
  });

  it.each([
    ["friend%example.com", "friend@example.com"],
    ["friend%EXAMPLE.com", "friend@example.com"],
    ["a%b%example.com", "a%b@example.com"], // the last % is the @, as in the percent hack
    ["Friend\\40Example.COM", "Friend@example.com"], // the domain is case-free, the local-part is kept
  ])("accepts %s on input as %s", (local, address) => {
    expect(emailCodec.decode(local)).toBe(address);
  });

  it.each([
    ["friend", /not an email address/],
    ["\\40example.com", /before @ is empty/],
    ["friend\\40", /not a mail domain/],
    ["friend\\40localhost", /not a mail domain/],
    ["friend\\40exa_mple.com", /not a mail domain/],
    ["friend\\40-example.com", /not a mail domain/],
    ["a..b\\40example.com", /dots/],
    [".a\\40example.com", /dots/],
    ["a\\20b\\40example.com", /spaces/],
    ["a\\22b\\40example.com", /may only hold/],
    ["a\\3cb\\3e\\40example.com", /may only hold/],
    ["jos\u00e9\\40example.com", /ASCII/],
    ["a\u0000\\40example.com", /control/],
    [`${"a".repeat(65)}\\40example.com`, /64/],
    [`a\\40${"b".repeat(64)}.com`, /not a mail domain/],
    [`a\\40${"b.".repeat(126)}com`, /254/],
  ])("refuses the localpart %s as jid-malformed", (local, why) => {
    const err = refusal(() => emailCodec.decode(local));
    expect(err.condition).toBe("jid-malformed");
    expect(err.message).toMatch(why);
  });

  it("never encodes an address a header could be injected through", () => {
    const err = refusal(() => emailCodec.encode("a@example.com\r\nBcc: x@y.com"));
    expect(err.condition).toBe("jid-malformed");
    expect(err.message).toMatch(/line breaks/);
  });
});

describe("email codec: what users type in the prompt", () => {
  it.each([
    ["friend@example.com", "friend@example.com"],
    ["  friend@Example.com \n", "friend@example.com"],
    ["Jane Friend <friend@example.com>", "friend@example.com"],
    ['"Friend, Jane" <friend@example.com>', "friend@example.com"],
    ["<friend@example.com>", "friend@example.com"],
    ["mailto:friend@example.com", "friend@example.com"],
    ["MAILTO:friend@example.com?subject=Hello", "friend@example.com"],
    ["mailto:o%27brien@example.com", "o'brien@example.com"],
    ["Jane <mailto:friend@example.com>", "friend@example.com"],
  ])("reads %j as %s", (prompt, address) => {
    expect(emailCodec.fromPrompt(prompt)).toBe(address);
  });

  it.each([
    ["", /Type an email address/],
    ["   ", /Type an email address/],
    ["friend", /not an email address/],
    ["friend at example dot com", /spaces/],
    ["mailto:a@example.com,b@example.com", /one email address/],
    ["mailto:a%E0@example.com", /not properly encoded/],
    ["friend@example.com\r\nBcc: x@y.com", /line breaks/],
    ["x".repeat(600), /too long/],
  ])("refuses %j as item-not-found", (prompt, why) => {
    const err = refusal(() => emailCodec.fromPrompt(prompt));
    expect(err.condition).toBe("item-not-found");
    expect(err.message).toMatch(why);
  });
});

describe("email codec: local-parts (aliases)", () => {
  it.each([
    ["alice", true],
    ["alice.smith", true],
    ["a_b-c", true],
    ["", false],
    ["a b", false],
    ["a@b", false],
    ["a.", false],
    ["x".repeat(64), true],
    ["x".repeat(65), false],
  ])("%j is a valid local-part: %s", (local, ok) => {
    if (ok) expect(checkLocalPart(local, "not-acceptable", "The alias")).toBe(local);
    else
      expect(refusal(() => checkLocalPart(local, "not-acceptable", "The alias")).condition).toBe(
        "not-acceptable",
      );
  });
});
