import { describe, expect, it } from "vitest";
import { describeTwilioError, isTerminal, statusRank } from "./twilio-errors.js";
import { isErrorCondition } from "../../src/xmpp/errors.js";

describe("describeTwilioError", () => {
  it.each([
    [21211, "item-not-found", /not a valid phone number.*\+12025550123/],
    [21214, "item-not-found", /cannot be reached/],
    [21408, "policy-violation", /not allowed to send SMS to that country.*administrator/],
    [21608, "policy-violation", /trial account/],
    [21610, "not-acceptable", /replied STOP.*text START/],
    [21612, "service-unavailable", /cannot connect.*administrator/],
    [21614, "item-not-found", /not a mobile number/],
    [21617, "not-acceptable", /too long.*1,600 characters/],
    [21635, "item-not-found", /landline/],
    [21606, "internal-server-error", /sending number cannot send.*administrator/],
    [20003, "internal-server-error", /could not sign in.*administrator/],
    [20429, "resource-constraint", /Wait a minute/],
    [30003, "recipient-unavailable", /switched off.*try again later/],
    [30004, "not-acceptable", /blocks messages/],
    [30005, "item-not-found", /does not know this number/],
    [30006, "item-not-found", /landline/],
    [30007, "policy-violation", /filtered this message as spam/],
    [30008, "undefined-condition", /unknown delivery error/],
    [30034, "policy-violation", /not registered for A2P 10DLC.*administrator must register/],
  ])("Twilio error %i is %s", (code, condition, text) => {
    const described = describeTwilioError(code, "Twilio's own message");
    expect(described.condition).toBe(condition);
    expect(described.text).toMatch(text);
    expect(described.text).toContain(`Twilio error ${code}`);
    // A known code is explained in our words; Twilio's raw message is not shown.
    expect(described.text).not.toContain("Twilio's own message");
    expect(isErrorCondition(described.condition)).toBe(true);
  });

  it("treats HTTP 429 like Twilio error 20429", () => {
    const described = describeTwilioError(429);
    expect(described.condition).toBe("resource-constraint");
    expect(described.text).toMatch(/Wait a minute.*\(Twilio error 429\)$/);
  });

  it("never shows credentials when authentication fails", () => {
    const { text } = describeTwilioError(
      20003,
      "Authenticate with ACdeadbeefdeadbeefdeadbeefdeadbeef:secret-token",
    );
    expect(text).not.toMatch(/ACdeadbeef|secret-token|Authenticate/);
  });

  it("passes an unknown code through with Twilio's own message", () => {
    expect(describeTwilioError(21999, "Something new went wrong")).toEqual({
      condition: "undefined-condition",
      text: "Twilio could not send the message (Twilio error 21999): Something new went wrong",
    });
  });

  it("says when Twilio gave neither code nor message", () => {
    expect(describeTwilioError(undefined)).toEqual({
      condition: "undefined-condition",
      text: "Twilio could not send the message (Twilio error (no code given)).",
    });
  });

  it("cleans a fallback message: one line, no account SID, bounded", () => {
    const { text } = describeTwilioError(
      20404,
      `The requested resource /2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json\r\nwas not found ${"x".repeat(400)}`,
    );
    expect(text).toContain("Twilio error 20404");
    expect(text).toContain("/Accounts/AC…/Messages.json was not found");
    expect(text).not.toMatch(/[\r\n]|0123456789abcdef/);
    expect(text.length).toBeLessThan(300);
  });
});

describe("Twilio message status order", () => {
  it.each([
    ["accepted", "sending"],
    ["scheduled", "sending"],
    ["queued", "sending"],
    ["sending", "sent"],
    ["sent", "delivered"],
    ["sent", "undelivered"],
    ["sent", "failed"],
    ["queued", "canceled"],
    ["delivered", "read"],
  ])("%s comes before %s, so a late earlier status never replaces it", (earlier, later) => {
    expect(statusRank(later)).toBeGreaterThan(statusRank(earlier));
  });

  it.each([
    ["delivered", "undelivered"],
    ["undelivered", "delivered"],
    ["failed", "delivered"],
    ["delivered", "delivered"],
  ])("after %s, a report of %s does not replace it (first final report wins)", (first, second) => {
    expect(statusRank(second) > statusRank(first)).toBe(false);
  });

  it.each([
    ["queued", false],
    ["accepted", false],
    ["scheduled", false],
    ["sending", false],
    ["sent", false], // a delivery report may still follow
    ["delivered", true],
    ["undelivered", true],
    ["failed", true],
    ["canceled", true],
    ["read", true],
    ["partially_delivered", true],
    ["received", false],
    ["bogus", false],
  ])("%s is terminal: %s", (status, terminal) => {
    expect(isTerminal(status)).toBe(terminal);
  });

  it("ranks inbound and unknown statuses lowest, so they never overwrite anything", () => {
    expect(statusRank("receiving")).toBe(0);
    expect(statusRank("received")).toBe(0);
    expect(statusRank("")).toBe(0);
    expect(statusRank("DELIVERED")).toBe(statusRank("delivered"));
  });
});
