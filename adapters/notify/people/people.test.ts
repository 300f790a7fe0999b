import { describe, expect, it } from "vitest";
import { refusal } from "../../../test/support/refusal.js";
import { checkChannels, checkTime, checkTimeZone, normaliseEmail, normalisePhone } from "./contacts.js";
import { recipientLine } from "./engine.js";
import { checkGroupName, checkMembers } from "./groups.js";
import { MAX_GROUP_MEMBERS } from "./limits.js";

describe("contact fields", () => {
  it.each([
    ["+12025550123", "+12025550123"],
    ["+1 (202) 555-0123", "+12025550123"],
    [" +33 6 12 34 56 78 ", "+33612345678"],
  ])("phone %j → %j", (input, out) => expect(normalisePhone(input)).toBe(out));

  it.each(["2025550123", "+1555", "+1 202 555 01234567", "tel:+12025550123", "", "+99912345678"])(
    "refuses the phone %j",
    (input) => expect(refusal(() => normalisePhone(input))).toMatchObject({ condition: "not-acceptable" }),
  );

  it.each([
    ["Bob@Example.ORG", "Bob@example.org"],
    ["a.b+alerts@sub.example.co.uk", "a.b+alerts@sub.example.co.uk"],
  ])("email %j → %j", (input, out) => expect(normaliseEmail(input)).toBe(out));

  it.each([
    "bob",
    "bob@localhost",
    "bob@example.org\r\nBcc: x@y.org",
    "<bob@example.org>",
    "a b@example.org",
  ])("refuses the email %j", (input) =>
    expect(refusal(() => normaliseEmail(input))).toMatchObject({ condition: "not-acceptable" }),
  );

  it.each([
    ["22:00", "22:00"],
    ["7:05", "07:05"],
    ["00:00", "00:00"],
  ])("time %j → %j", (input, out) => expect(checkTime(input, "From")).toBe(out));

  it.each(["24:00", "7", "12:60", "noon"])("refuses the time %j", (input) =>
    expect(refusal(() => checkTime(input, "From"))).toMatchObject({ condition: "not-acceptable" }),
  );

  it("takes IANA time zones and refuses others", () => {
    expect(checkTimeZone("Europe/Paris")).toBe("Europe/Paris");
    expect(checkTimeZone("UTC")).toBe("UTC");
    expect(refusal(() => checkTimeZone("Mars/Olympus"))).toMatchObject({ condition: "not-acceptable" });
  });

  it("keeps the channels in their order and refuses none or unknown ones", () => {
    expect(checkChannels(["email", "xmpp"])).toEqual(["xmpp", "email"]);
    expect(refusal(() => checkChannels([]))).toMatchObject({ condition: "not-acceptable" });
    expect(refusal(() => checkChannels(["pager"]))).toMatchObject({ condition: "not-acceptable" });
  });
});

describe("groups", () => {
  it("takes names as the notify config spells them, and refuses others", () => {
    expect(checkGroupName(" OnCall-1 ")).toBe("OnCall-1");
    for (const bad of ["", "-x", "a@b", "a b", "x".repeat(65)])
      expect(refusal(() => checkGroupName(bad))).toMatchObject({ condition: "not-acceptable" });
  });

  it("reads members one per line or separated by commas, keeps the order, drops repeats", () => {
    expect(checkMembers(["a@x.org, B@x.org", "", "c@x.org a@x.org"])).toEqual([
      "a@x.org",
      "b@x.org",
      "c@x.org",
    ]);
    expect(refusal(() => checkMembers(["a@x.org/phone"]))).toMatchObject({ condition: "jid-malformed" });
    expect(refusal(() => checkMembers([""]))).toMatchObject({ condition: "not-acceptable" });
    const many = Array.from({ length: MAX_GROUP_MEMBERS + 1 }, (_, i) => `u${i}@x.org`);
    expect(refusal(() => checkMembers(many))).toMatchObject({ condition: "not-acceptable" });
  });
});

describe("recent alerts", () => {
  it("shows each channel's furthest state and the acknowledgement", () => {
    const states = {
      "a@x.org xmpp queued": "t",
      "a@x.org xmpp sent": "t",
      "a@x.org xmpp delivered": "t",
      "a@x.org sms sent": "t",
      "a@x.org ack": "t",
    };
    expect(recipientLine("a@x.org", states)).toBe("a@x.org: xmpp delivered, sms sent (acknowledged)");
    expect(recipientLine("b@x.org", states)).toBe("b@x.org: waiting");
  });
});
