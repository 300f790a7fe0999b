import { describe, expect, it } from "vitest";
import { countryOf, inboundParams, signedRequest, statusParams } from "./webhooks.js";
import { twilioSignature } from "./signature.js";

const AC = "AC" + "1".repeat(32);
const SM = "SM" + "2".repeat(32);

describe("incoming-message webhook parameters", () => {
  it.each<[string, { body: string; media: { url: string; contentType: string }[] }, Record<string, string>]>([
    ["an SMS", { body: "hello", media: [] }, { Body: "hello", NumMedia: "0", NumSegments: "1" }],
    [
      "an MMS with two files",
      {
        body: "",
        media: [
          { url: "https://m/1", contentType: "image/jpeg" },
          { url: "https://m/2", contentType: "video/mp4" },
        ],
      },
      {
        Body: "",
        NumMedia: "2",
        MediaUrl0: "https://m/1",
        MediaContentType0: "image/jpeg",
        MediaUrl1: "https://m/2",
        MediaContentType1: "video/mp4",
      },
    ],
    ["a long Cyrillic SMS", { body: "д".repeat(100), media: [] }, { NumSegments: "2" }],
  ])("for %s", (_, m, expected) => {
    const params = inboundParams({
      accountSid: AC,
      messageSid: SM,
      from: "+447700900123",
      to: "+15550000001",
      ...m,
    });
    expect(params).toMatchObject({
      ...expected,
      MessageSid: SM,
      SmsSid: SM,
      SmsMessageSid: SM,
      AccountSid: AC,
      From: "+447700900123",
      To: "+15550000001",
      FromCountry: "GB",
      ToCountry: "US",
      SmsStatus: "received",
      ApiVersion: "2010-04-01",
    });
  });

  it.each([
    ["+15550001111", "US"],
    ["+33612345678", "FR"],
    ["+8613800000000", ""],
  ])("gives %s the country %j", (number, iso) => {
    expect(countryOf(number)).toBe(iso);
  });
});

describe("status callback parameters", () => {
  const base = { accountSid: AC, messageSid: SM, from: "+15550000001", to: "+15551234567" };
  it.each<[string, Parameters<typeof statusParams>[0], Record<string, string>, string[]]>([
    [
      "delivered",
      { ...base, status: "delivered", errorCode: null, messagingServiceSid: null },
      {},
      ["ErrorCode"],
    ],
    [
      "sent with a code",
      { ...base, status: "sent", errorCode: 30003, messagingServiceSid: null },
      {},
      ["ErrorCode"],
    ],
    [
      "undelivered",
      { ...base, status: "undelivered", errorCode: 30003, messagingServiceSid: null },
      { ErrorCode: "30003" },
      [],
    ],
    [
      "failed",
      { ...base, status: "failed", errorCode: 30008, messagingServiceSid: "MG1" },
      { ErrorCode: "30008", MessagingServiceSid: "MG1" },
      [],
    ],
  ])("for %s", (_, m, expected, absent) => {
    const params = statusParams(m);
    expect(params).toMatchObject({
      ...expected,
      MessageSid: SM,
      SmsSid: SM,
      MessageStatus: m.status,
      SmsStatus: m.status,
      AccountSid: AC,
      ApiVersion: "2010-04-01",
    });
    for (const name of absent) expect(params).not.toHaveProperty(name);
  });
});

describe("signed requests", () => {
  it.each([
    [false, true],
    [true, false],
  ])("forged=%s carries a valid signature: %s", (forge, valid) => {
    const req = signedRequest("tok", "http://127.0.0.1:9/sms", { Body: "x" }, forge);
    expect(req.headers["x-twilio-signature"] === twilioSignature("tok", req.url, req.params)).toBe(valid);
    expect(req.body).toBe("Body=x");
  });
});
