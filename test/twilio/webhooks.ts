/**
 * The requests Twilio makes to an application: the incoming-message webhook and status callbacks, both
 * form-encoded POSTs signed with X-Twilio-Signature.
 * https://www.twilio.com/docs/messaging/guides/webhook-request
 * https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
 */
import { request } from "node:http";
import { randomUUID } from "node:crypto";
import { API_VERSION, countSegments, type MessageStatus } from "./messages.js";
import { formBody, twilioSignature } from "./signature.js";

/**
 * Connection-override defaults (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides):
 * one retry (rc=1), only when the connection fails (rp=ct); an HTTP error answer is not retried.
 */
export const CONNECT_RETRIES = 1;
/** Twilio's default read timeout for a webhook answer (rt=15000 ms). */
export const READ_TIMEOUT_MS = 15_000;
/** Largest webhook answer the fake reads back (TwiML replies are small). */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** One signed POST, kept whole so a test can send the very same bytes again. */
export interface WebhookRequest {
  url: string;
  params: Record<string, string>;
  headers: Record<string, string>;
  body: string;
}

export interface WebhookAnswer {
  status: number;
  body: string;
}

/** Countries for the few calling codes the tests use (Twilio sends FromCountry/ToCountry "if available"). */
const COUNTRIES: [prefix: string, iso: string][] = [
  ["+1", "US"],
  ["+33", "FR"],
  ["+44", "GB"],
  ["+49", "DE"],
  ["+61", "AU"],
];

export function countryOf(number: string): string {
  return COUNTRIES.find(([prefix]) => number.startsWith(prefix))?.[1] ?? "";
}

/** Parameters of the incoming-message webhook for an SMS (or an MMS when media is given). */
export function inboundParams(m: {
  accountSid: string;
  messageSid: string;
  from: string;
  to: string;
  body: string;
  media: readonly { url: string; contentType: string }[];
}): Record<string, string> {
  const params: Record<string, string> = {
    AccountSid: m.accountSid,
    ApiVersion: API_VERSION,
    Body: m.body,
    From: m.from,
    FromCity: "",
    FromCountry: countryOf(m.from),
    FromState: "",
    FromZip: "",
    MessageSid: m.messageSid,
    NumMedia: String(m.media.length),
    NumSegments: String(countSegments(m.body).segments),
    SmsMessageSid: m.messageSid,
    SmsSid: m.messageSid,
    SmsStatus: "received",
    To: m.to,
    ToCity: "",
    ToCountry: countryOf(m.to),
    ToState: "",
    ToZip: "",
  };
  m.media.forEach((item, i) => {
    params[`MediaContentType${i}`] = item.contentType;
    params[`MediaUrl${i}`] = item.url;
  });
  return params;
}

/** Parameters of one status callback; ErrorCode only for the failure states, as Twilio sends it. */
export function statusParams(m: {
  accountSid: string;
  messageSid: string;
  from: string;
  to: string;
  status: MessageStatus;
  errorCode: number | null;
  messagingServiceSid: string | null;
}): Record<string, string> {
  const params: Record<string, string> = {
    AccountSid: m.accountSid,
    ApiVersion: API_VERSION,
    From: m.from,
    MessageSid: m.messageSid,
    MessageStatus: m.status,
    SmsSid: m.messageSid,
    SmsStatus: m.status,
    To: m.to,
  };
  if (m.messagingServiceSid !== null) params.MessagingServiceSid = m.messagingServiceSid;
  if ((m.status === "failed" || m.status === "undelivered") && m.errorCode !== null) {
    params.ErrorCode = String(m.errorCode);
  }
  return params;
}

/** A signed request for url; a forged one carries a signature made with the wrong key. */
export function signedRequest(
  authToken: string,
  url: string,
  params: Record<string, string>,
  forge = false,
): WebhookRequest {
  const signature = twilioSignature(forge ? `${authToken}-forged` : authToken, url, params);
  return {
    url,
    params,
    body: formBody(params),
    headers: {
      "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      "user-agent": "TwilioProxy/1.1",
      "x-twilio-signature": signature,
      // Twilio marks each event with one token, the same on every retry of it.
      "i-twilio-idempotency-token": randomUUID(),
    },
  };
}

/** Thrown when the receiver could not be reached, even after Twilio's retry. */
export class WebhookUnreachable extends Error {
  override name = "WebhookUnreachable";
}

/** Thrown when the receiver took the request but did not answer in time (not retried: rp=ct only). */
export class WebhookTimeout extends Error {
  override name = "WebhookTimeout";
}

function postOnce(req: WebhookRequest, signal: AbortSignal | undefined): Promise<WebhookAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(req.url, {
      method: "POST",
      headers: { ...req.headers, "content-length": String(Buffer.byteLength(req.body)) },
      timeout: READ_TIMEOUT_MS,
      signal,
    });
    outgoing.on("timeout", () => outgoing.destroy(new WebhookTimeout(`no answer from ${req.url}`)));
    outgoing.on("error", reject);
    outgoing.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
      });
      res.on("error", reject);
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
    });
    outgoing.end(req.body);
  });
}

/** POST the request, retrying once when the connection fails, as Twilio does by default. */
export async function deliver(req: WebhookRequest, signal?: AbortSignal): Promise<WebhookAnswer> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= CONNECT_RETRIES; attempt++) {
    try {
      return await postOnce(req, signal);
    } catch (err) {
      if (err instanceof WebhookTimeout || signal?.aborted) throw err;
      lastError = err;
    }
  }
  const reason = (lastError as NodeJS.ErrnoException | undefined)?.code ?? String(lastError);
  throw new WebhookUnreachable(`could not reach ${req.url} (${reason})`, { cause: lastError });
}
