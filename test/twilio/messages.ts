/**
 * Pure pieces of the fake's Messages API: request validation with Twilio's error codes, segment counting,
 * and the snake_case JSON Twilio answers with.
 * https://www.twilio.com/docs/messaging/api/message-resource
 */
import { randomBytes } from "node:crypto";

export const API_VERSION = "2010-04-01";

/** Twilio: "The message text. Can be up to 1,600 characters long." (error 21617 beyond). */
export const MAX_BODY_CHARS = 1600;
/** Twilio: up to 10 MediaUrl per message (error 21623 beyond). */
export const MAX_MEDIA = 10;
/** GSM 03.38 / 3GPP TS 23.038: 160 septets in one SMS, 153 per part once a UDH is needed. */
export const GSM_SINGLE = 160;
export const GSM_PART = 153;
/** UCS-2: 70 UTF-16 code units in one SMS, 67 per part once concatenated. */
export const UCS2_SINGLE = 70;
export const UCS2_PART = 67;

/** E.164: "+", a non-zero country-code digit, at most 15 digits in all. */
const E164 = /^\+[1-9]\d{1,14}$/;
/** SIDs: two-letter type prefix and 32 hex digits. */
const MESSAGING_SERVICE_SID = /^MG[0-9a-f]{32}$/;

const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿" +
  "abcdefghijklmnopqrstuvwxyzäöñüà";
/** GSM 03.38 extension table: each costs an escape septet plus its own. */
const GSM_EXTENSION = "\f^{}\\[~]|€";

export type MessageStatus =
  "accepted" | "queued" | "sending" | "sent" | "delivered" | "undelivered" | "failed";

/** Twilio's error body (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions). */
export interface TwilioError {
  code: number;
  message: string;
  more_info: string;
  status: number;
}

export function twilioError(status: number, code: number, message: string): TwilioError {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** The message Twilio answers for the HTTP-level failures a test can inject. */
export const FAULT_ERRORS: Record<number, { code: number; message: string }> = {
  429: { code: 20429, message: "Too Many Requests" },
  500: { code: 20500, message: "Internal Server Error" },
  503: { code: 20503, message: "Service Unavailable" },
};

export function newSid(prefix: string): string {
  return prefix + randomBytes(16).toString("hex");
}

/** RFC 2822 date in GMT as Twilio writes it: "Thu, 30 Jul 2015 20:12:31 +0000". */
export function rfc2822(date: Date): string {
  return date.toUTCString().replace(/GMT$/, "+0000");
}

/** How many SMS a body takes: GSM-7 when every character is in GSM 03.38, UCS-2 otherwise. */
export function countSegments(body: string): { encoding: "GSM-7" | "UCS-2"; segments: number } {
  let septets = 0;
  for (const ch of body) {
    if (GSM_BASIC.includes(ch)) septets += 1;
    else if (GSM_EXTENSION.includes(ch)) septets += 2;
    else {
      const units = body.length; // UTF-16 code units: an astral character (emoji) takes two
      return { encoding: "UCS-2", segments: units <= UCS2_SINGLE ? 1 : Math.ceil(units / UCS2_PART) };
    }
  }
  return { encoding: "GSM-7", segments: septets <= GSM_SINGLE ? 1 : Math.ceil(septets / GSM_PART) };
}

export function isE164(number: string): boolean {
  return E164.test(number);
}

/** A create request, as the fake reads it from the form. */
export interface CreateRequest {
  to: string | undefined;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  body: string | undefined;
  mediaUrls: string[];
  statusCallback: string | undefined;
}

export function readCreate(form: URLSearchParams): CreateRequest {
  const opt = (name: string): string | undefined => form.get(name) ?? undefined;
  return {
    to: opt("To"),
    from: opt("From"),
    messagingServiceSid: opt("MessagingServiceSid"),
    body: opt("Body"),
    mediaUrls: form.getAll("MediaUrl"),
    statusCallback: opt("StatusCallback"),
  };
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/**
 * Twilio's answer to a create it refuses, or null when it accepts it. Checks run in the order Twilio
 * reports them (the first failing one wins). Codes: https://www.twilio.com/docs/api/errors
 */
export function validateCreate(req: CreateRequest, owned: readonly string[]): TwilioError | null {
  const bad = (code: number, message: string): TwilioError => twilioError(400, code, message);
  if (!req.to) return bad(21604, "A 'To' phone number is required.");
  if (!req.from && !req.messagingServiceSid) return bad(21603, "A 'From' phone number is required.");
  if (!isE164(req.to)) return bad(21211, `The 'To' number ${req.to} is not a valid phone number.`);
  if (req.from !== undefined && !owned.includes(req.from)) {
    return bad(
      21606,
      `The From phone number ${req.from} is not a valid, SMS-capable inbound phone number or short code for your account.`,
    );
  }
  if (req.from === undefined && !MESSAGING_SERVICE_SID.test(req.messagingServiceSid ?? "")) {
    return bad(21701, `The Messaging Service Sid ${req.messagingServiceSid} is invalid.`);
  }
  if (req.from === req.to) return bad(21266, "'To' and 'From' number cannot be the same");
  if (!req.body && req.mediaUrls.length === 0) return bad(21602, "Message body is required.");
  if ((req.body ?? "").length > MAX_BODY_CHARS) {
    return bad(21617, "The concatenated message body exceeds the 1600 character limit.");
  }
  if (req.mediaUrls.length > MAX_MEDIA) return bad(21623, "Number of media files exceeds allowed limit");
  if (!req.mediaUrls.every(isHttpUrl)) return bad(21620, "Invalid media URL(s).");
  if (req.statusCallback !== undefined && !isHttpUrl(req.statusCallback)) {
    return bad(21609, "Invalid StatusCallback URL.");
  }
  return null;
}

/** A message as the fake stores it; `json()` renders Twilio's representation. */
export interface StoredMessage {
  sid: string;
  accountSid: string;
  to: string;
  /** null while a Messaging Service has not picked a sender yet. */
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  mediaUrls: string[];
  status: MessageStatus;
  errorCode: number | null;
  dateCreated: Date;
  dateUpdated: Date;
  dateSent: Date | null;
}

export function messageJson(m: StoredMessage): Record<string, unknown> {
  const uri = `/${API_VERSION}/Accounts/${m.accountSid}/Messages/${m.sid}`;
  return {
    account_sid: m.accountSid,
    api_version: API_VERSION,
    body: m.body,
    date_created: rfc2822(m.dateCreated),
    date_sent: m.dateSent && rfc2822(m.dateSent),
    date_updated: rfc2822(m.dateUpdated),
    direction: "outbound-api",
    error_code: m.errorCode,
    error_message: null,
    from: m.from,
    messaging_service_sid: m.messagingServiceSid,
    num_media: String(m.mediaUrls.length),
    // Twilio: "For messages sent via a Messaging Service, num_segments is initially 0".
    num_segments: m.from === null ? "0" : String(countSegments(m.body).segments),
    price: null,
    price_unit: "USD",
    sid: m.sid,
    status: m.status,
    subresource_uris: { media: `${uri}/Media.json`, feedback: `${uri}/Feedback.json` },
    to: m.to,
    uri: `${uri}.json`,
  };
}
