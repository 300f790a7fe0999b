import { describe, expect, it } from "vitest";
import {
  countSegments,
  messageJson,
  readCreate,
  rfc2822,
  validateCreate,
  type StoredMessage,
} from "./messages.js";

const OWNED = ["+15550000001", "+15550000002"];
const SERVICE = "MG" + "a".repeat(32);

describe("SMS segments", () => {
  it.each<[string, string, "GSM-7" | "UCS-2", number]>([
    ["an empty body", "", "GSM-7", 1],
    ["160 GSM characters", "a".repeat(160), "GSM-7", 1],
    ["161 GSM characters", "a".repeat(161), "GSM-7", 2],
    ["306 GSM characters", "a".repeat(306), "GSM-7", 2],
    ["307 GSM characters", "a".repeat(307), "GSM-7", 3],
    ["80 euro signs (two septets each)", "€".repeat(80), "GSM-7", 1],
    ["81 euro signs", "€".repeat(81), "GSM-7", 2],
    ["accented letters in GSM 03.38", "Dès où à Ñ £5 ¿qué?", "GSM-7", 1],
    ["70 Cyrillic letters", "д".repeat(70), "UCS-2", 1],
    ["71 Cyrillic letters", "д".repeat(71), "UCS-2", 2],
    ["one emoji in GSM text", "hi 👋", "UCS-2", 1],
    ["35 emoji (70 UTF-16 units)", "👋".repeat(35), "UCS-2", 1],
    ["36 emoji", "👋".repeat(36), "UCS-2", 2],
    ["134 UCS-2 units", "ç".repeat(60) + "д".repeat(74), "UCS-2", 2],
  ])("%s", (_, body, encoding, segments) => {
    expect(countSegments(body)).toEqual({ encoding, segments });
  });
});

describe("create validation", () => {
  const form = (fields: Record<string, string | string[]>): URLSearchParams => {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) search.append(k, x);
    return search;
  };
  const ok = { To: "+15551234567", From: "+15550000001", Body: "hi" };

  it.each<[string, Record<string, string | string[]>, number | null]>([
    ["a plain SMS", ok, null],
    ["an MMS without text", { To: ok.To, From: ok.From, MediaUrl: "https://example.org/a.jpg" }, null],
    ["a Messaging Service instead of From", { To: ok.To, MessagingServiceSid: SERVICE, Body: "x" }, null],
    ["1600 characters", { ...ok, Body: "x".repeat(1600) }, null],
    ["no To", { From: ok.From, Body: "hi" }, 21604],
    ["an empty To", { ...ok, To: "" }, 21604],
    ["neither From nor a Messaging Service", { To: ok.To, Body: "hi" }, 21603],
    ["a national To", { ...ok, To: "5551234567" }, 21211],
    ["a To with spaces", { ...ok, To: "+1 555 123 4567" }, 21211],
    ["a To of 16 digits", { ...ok, To: "+1234567890123456" }, 21211],
    ["a From the account does not own", { ...ok, From: "+15559999999" }, 21606],
    ["a malformed Messaging Service", { To: ok.To, MessagingServiceSid: "MG123", Body: "x" }, 21701],
    ["To equal to From", { ...ok, To: ok.From }, 21266],
    ["no Body and no media", { To: ok.To, From: ok.From }, 21602],
    ["an empty Body", { ...ok, Body: "" }, 21602],
    ["1601 characters", { ...ok, Body: "x".repeat(1601) }, 21617],
    ["11 media URLs", { ...ok, MediaUrl: Array.from({ length: 11 }, (_, i) => `https://e.org/${i}`) }, 21623],
    ["an ftp media URL", { ...ok, MediaUrl: "ftp://example.org/a.jpg" }, 21620],
    ["a media URL that is not a URL", { ...ok, MediaUrl: ["https://e.org/1", "a.jpg"] }, 21620],
    ["a StatusCallback that is not http", { ...ok, StatusCallback: "mailto:x@example.org" }, 21609],
  ])("%s", (_, fields, code) => {
    const refusal = validateCreate(readCreate(form(fields)), OWNED);
    expect(refusal?.code ?? null).toBe(code);
    if (refusal) {
      expect(refusal.status).toBe(400);
      expect(refusal.more_info).toBe(`https://www.twilio.com/docs/errors/${code}`);
      expect(refusal.message.length).toBeGreaterThan(10);
    }
  });
});

describe("message JSON", () => {
  const stored = (over: Partial<StoredMessage>): StoredMessage => ({
    sid: "SM" + "0".repeat(32),
    accountSid: "AC" + "1".repeat(32),
    to: "+15551234567",
    from: "+15550000001",
    messagingServiceSid: null,
    body: "a".repeat(200),
    mediaUrls: [],
    status: "queued",
    errorCode: null,
    dateCreated: new Date(Date.UTC(2015, 6, 30, 20, 12, 31)),
    dateUpdated: new Date(Date.UTC(2015, 6, 30, 20, 12, 31)),
    dateSent: null,
    ...over,
  });

  it("writes dates as RFC 2822 in GMT", () => {
    expect(rfc2822(new Date(Date.UTC(2015, 6, 30, 20, 12, 31)))).toBe("Thu, 30 Jul 2015 20:12:31 +0000");
  });

  it.each<[string, Partial<StoredMessage>, Record<string, unknown>]>([
    ["a long SMS", {}, { num_segments: "2", num_media: "0", status: "queued", date_sent: null }],
    ["an MMS", { mediaUrls: ["https://e.org/1", "https://e.org/2"] }, { num_media: "2" }],
    [
      "a Messaging Service send",
      { from: null, messagingServiceSid: "MG1" },
      { num_segments: "0", from: null },
    ],
    ["a failed message", { status: "failed", errorCode: 30008 }, { status: "failed", error_code: 30008 }],
  ])("renders %s", (_, over, expected) => {
    const json = messageJson(stored(over));
    expect(json).toMatchObject({
      ...expected,
      direction: "outbound-api",
      api_version: "2010-04-01",
      uri: `/2010-04-01/Accounts/AC${"1".repeat(32)}/Messages/SM${"0".repeat(32)}.json`,
      date_created: "Thu, 30 Jul 2015 20:12:31 +0000",
    });
  });
});
