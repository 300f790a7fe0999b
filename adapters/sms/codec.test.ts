import { refusal } from "../../test/support/refusal.js";
import { describe, expect, it } from "vitest";
import { EXAMPLE_E164, countryOf, createSmsCodec } from "./codec.js";

const plain = createSmsCodec();
const us = createSmsCodec({ defaultCountry: "US" });
const fr = createSmsCodec({ defaultCountry: "FR" });
const gb = createSmsCodec({ defaultCountry: "GB" });

describe("SMS codec: JID localparts", () => {
  it.each([
    ["+12025550123", "+12025550123"],
    ["+447911123456", "+447911123456"],
    ["+33612345678", "+33612345678"],
    ["+4915112345678", "+4915112345678"],
    ["+8613812345678", "+8613812345678"],
    ["+50031234", "+50031234"], // Falklands: 8 digits, the shortest accepted
  ])("decodes %s and encodes it back unchanged", (local, e164) => {
    expect(plain.decode(local)).toBe(e164);
    expect(plain.encode(e164)).toBe(local);
  });

  it.each([
    ["12025550123", "jid-malformed", /E\.164/],
    ["+1 202 555 0123", "jid-malformed", /no spaces/],
    ["+1\\20202\\205550123", "jid-malformed", /no spaces/], // XEP-0106 escaped spaces are still spaces
    ["+1-202-555-0123", "jid-malformed", /E\.164/],
    ["+012025550123", "jid-malformed", /E\.164/],
    ["+1202555", "jid-malformed", /8–15 digits/],
    ["+1234567890123456", "jid-malformed", /8–15 digits/],
    ["", "jid-malformed", /E\.164/],
    ["bob", "jid-malformed", /E\.164/],
    ["33733", "jid-malformed", /[Ss]hort codes .* not supported yet/],
    ["33733;phone-context=ca-us.phone-context.soprani.ca", "jid-malformed", /not supported yet/],
    ["+4402079460018", "jid-malformed", /use \+442079460018/], // UK trunk 0 kept after +44
    ["+15551234567", "item-not-found", /not a valid phone number/], // 555 is no area code
    ["+99912345678", "item-not-found", /not a valid phone number/], // no country +999
  ])("refuses the localpart %j with %s", (local, condition, text) => {
    const err = refusal(() => plain.decode(local));
    expect(err.condition).toBe(condition);
    expect(err.message).toMatch(text);
    if (condition === "jid-malformed" && !/use \+/.test(err.message))
      expect(err.message).toContain(EXAMPLE_E164);
  });

  it("encode refuses what decode refuses, so no bad JID is ever made", () => {
    expect(refusal(() => plain.encode("2025550123")).condition).toBe("jid-malformed");
    expect(refusal(() => plain.encode("+15551234567")).condition).toBe("item-not-found");
  });

  it("the example in every help text is itself accepted", () => {
    expect(plain.decode(EXAMPLE_E164)).toBe(EXAMPLE_E164);
  });
});

describe("SMS codec: what people type in the gateway prompt", () => {
  it.each([
    [us, "(202) 555-0123", "+12025550123"],
    [us, "202.555.0123", "+12025550123"],
    [us, "202 555 0123", "+12025550123"],
    [us, "1 202 555 0123", "+12025550123"],
    [us, "  +1 (202) 555-0123 \n", "+12025550123"],
    [us, "+1\u2011202\u2011555\u20110123", "+12025550123"], // non-breaking hyphens from a phone app
    [us, "011 33 6 12 34 56 78", "+33612345678"], // NANP international prefix
    [us, "00 33 6 12 34 56 78", "+33612345678"], // 00 is read as + whatever the default country
    [fr, "06 12 34 56 78", "+33612345678"],
    [fr, "06.12.34.56.78", "+33612345678"],
    [fr, "06\u202f12\u202f34\u202f56\u202f78", "+33612345678"], // narrow no-break spaces
    [gb, "020 7946 0018", "+442079460018"],
    [gb, "0044 20 7946 0018", "+442079460018"],
    [gb, "+44 (0)20 7946 0018", "+442079460018"],
    [plain, "+33 6 12 34 56 78", "+33612345678"],
    [plain, "0033612345678", "+33612345678"],
    [plain, "tel:+1-202-555-0123", "+12025550123"],
    [plain, "TEL:+33.6.12.34.56.78", "+33612345678"],
    [plain, "tel:202-555-0123;phone-context=+1", "+12025550123"], // RFC 3966 §5.1.5 local number
  ])("%#: reads %j as %s", (codec, prompt, e164) => {
    expect(codec.fromPrompt(prompt)).toBe(e164);
  });

  it.each([
    [plain, "202 555 0123", /no country code/],
    [us, "555 123 4567", /not a valid phone number/],
    [us, "44 20 7946 0018", /read as a number in US/],
    [us, "hello", /"hello" is not a valid phone number/],
    [us, "+1 202 555 0123 ext. 5", /extension cannot receive SMS/],
    [us, "202-555-0123 x12", /extension cannot receive SMS/],
    [plain, "tel:+1-202-555-0123;ext=5", /extension cannot receive SMS/],
    [plain, "tel:555-0123;phone-context=example.com", /local number/],
    [us, "33733", /[Ss]hort codes .* not supported yet/],
    [plain, "898211", /not supported yet/],
    [us, "", /Type a phone number/],
    [us, "1".repeat(101), /too long/],
    [us, "+1 202 555 0123; DROP", /not a valid phone number/],
  ])("%#: refuses %j with item-not-found and says why", (codec, prompt, text) => {
    const err = refusal(() => codec.fromPrompt(prompt));
    expect(err.condition).toBe("item-not-found");
    expect(err.message).toMatch(text);
    expect(err.message).toContain(/extension/.test(err.message) ? "mobile number" : EXAMPLE_E164);
  });

  it("quotes at most a short piece of a hostile prompt", () => {
    const err = refusal(() => us.fromPrompt(`call ${"a".repeat(80)}`));
    expect(err.message.length).toBeLessThan(160);
  });
});

describe("countryOf", () => {
  it.each([
    ["+12025550123", "US"],
    ["+14165550123", "CA"], // NANP: +1 is shared, the area code decides
    ["+33612345678", "FR"],
    ["+442079460018", "GB"],
    ["+80012345678", undefined], // international freephone belongs to no country
    ["+15551234567", undefined], // not a valid number
    ["2025550123", undefined], // not E.164
  ])("%s is in %s", (e164, country) => {
    expect(countryOf(e164)).toBe(country);
    // Once the number was checked for a JID (where its country is kept), the answer is the same.
    try {
      createSmsCodec().encode(e164);
    } catch {
      // not a number a JID can hold
    }
    expect(countryOf(e164)).toBe(country);
  });
});
