/**
 * Twilio error codes → RFC 6120 §8.3.3 stanza error conditions, with a text the XMPP user can act on.
 * Codes and meanings: Twilio's error and warning dictionary (twilio.com/docs/api/errors/NNNNN).
 *
 * The same code can arrive synchronously (the REST API refuses the message) or later in a status callback
 * (`ErrorCode` with `MessageStatus` failed/undelivered); the text reads right in both cases.
 * Every text names "Twilio error NNNNN" so a user can quote it to the administrator.
 */
import type { ErrorCondition } from "../../src/xmpp/errors.js";
import { EXAMPLE_E164 } from "./codec.js";

export interface TwilioErrorDescription {
  condition: ErrorCondition;
  text: string;
}

/** Longest piece of Twilio's own message quoted for a code this table does not know. */
export const MAX_FALLBACK_CHARS = 200;

const ASK_ADMIN = "Please tell the gateway administrator.";

/** What each known code means for the person who sent the message. */
const KNOWN: ReadonlyMap<number, TwilioErrorDescription> = new Map<number, TwilioErrorDescription>([
  // XEP-0100 §4.8: an address the legacy service cannot reach is item-not-found.
  [
    21211,
    {
      condition: "item-not-found",
      text: `Twilio says this is not a valid phone number. Check it and write it with + and the country code, e.g. ${EXAMPLE_E164}.`,
    },
  ],
  [
    21214,
    {
      condition: "item-not-found",
      text: "Twilio says this phone number cannot be reached. Check the number.",
    },
  ],
  [
    21614,
    {
      condition: "item-not-found",
      text: "This is not a mobile number (it is probably a landline), so it cannot receive SMS.",
    },
  ],
  [21635, { condition: "item-not-found", text: "This number is a landline and cannot receive SMS." }],
  [
    30005,
    {
      condition: "item-not-found",
      text: "The carrier does not know this number; it may be wrong or no longer in service. The message was not delivered.",
    },
  ],
  [
    30006,
    {
      condition: "item-not-found",
      text: "This number cannot receive SMS: it is probably a landline, or its carrier cannot be reached. The message was not delivered.",
    },
  ],
  // The administrator's Twilio account may not send there (Messaging Geo Permissions): local policy.
  [
    21408,
    {
      condition: "policy-violation",
      text: `This gateway is not allowed to send SMS to that country or region. ${ASK_ADMIN} (Twilio Messaging Geo Permissions)`,
    },
  ],
  [
    21608,
    {
      condition: "policy-violation",
      text: `This gateway's Twilio account is a trial account and may only text verified numbers. ${ASK_ADMIN}`,
    },
  ],
  // RFC 6120 §8.3.3.12: not-acceptable is a request that does not meet criteria set by the recipient. The
  // recipient opted out themselves; resending, or waiting, does not help until they opt back in.
  [
    21610,
    {
      condition: "not-acceptable",
      text: "This person replied STOP to this gateway's number and no longer receives texts from it. They can text START to it to receive messages again.",
    },
  ],
  [
    30004,
    {
      condition: "not-acceptable",
      text: "The recipient or their carrier blocks messages from this number (for example after they replied STOP). The message was not delivered.",
    },
  ],
  [
    21617,
    {
      condition: "not-acceptable",
      text: "The message is too long for SMS: Twilio accepts at most 1,600 characters, and emoji count as more than one. Shorten it or split it.",
    },
  ],
  [
    30007,
    {
      condition: "policy-violation",
      text: "The carrier or Twilio filtered this message as spam. Reword it (links, shortened URLs and some words trigger filters); if it keeps happening, tell the gateway administrator.",
    },
  ],
  [
    30034,
    {
      condition: "policy-violation",
      text: "US carriers block texts from this gateway's number because it is not registered for A2P 10DLC. The gateway administrator must register the number (brand and campaign) in the Twilio Console.",
    },
  ],
  // RFC 6120 §8.3.3.6: internal-server-error covers a misconfiguration the sender cannot fix.
  [
    20003,
    {
      condition: "internal-server-error",
      text: `The gateway could not sign in to its SMS provider, so nothing can be sent right now. ${ASK_ADMIN}`,
    },
  ],
  [
    21606,
    {
      condition: "internal-server-error",
      text: `The gateway's sending number cannot send SMS to this destination. ${ASK_ADMIN}`,
    },
  ],
  // RFC 6120 §8.3.3.19: service-unavailable, the route does not exist right now.
  [
    21612,
    {
      condition: "service-unavailable",
      text: `Twilio cannot connect the gateway's sending number to this number (the carrier or country does not accept it). ${ASK_ADMIN}`,
    },
  ],
  // RFC 6120 §8.3.3.18: resource-constraint (type wait), the request is safe to retry after a pause.
  [
    20429,
    {
      condition: "resource-constraint",
      text: "Too many messages are being sent through the gateway right now. Wait a minute and send it again.",
    },
  ],
  // RFC 6120 §8.3.3.15: recipient-unavailable (type wait), the handset may come back.
  [
    30003,
    {
      condition: "recipient-unavailable",
      text: "The phone is switched off, out of coverage or otherwise unreachable. The message was not delivered; try again later.",
    },
  ],
  [
    30008,
    {
      condition: "undefined-condition",
      text: "The carrier reported an unknown delivery error. The message was not delivered; try again later.",
    },
  ],
]);

/** HTTP 429 without a Twilio code means the same as 20429 (twilio.com/docs/api/errors/20429). */
const ALIASES: ReadonlyMap<number, number> = new Map([[429, 20429]]);

/** Twilio's own text, made safe to show: one line, no control characters, no account SID, bounded. */
function cleanFallback(fallback: string): string {
  const text = fallback
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]+/gu, " ")
    .replace(/\bAC[0-9a-f]{32}\b/giu, "AC…")
    .replace(/\s+/gu, " ")
    .trim();
  const chars = [...text];
  return chars.length > MAX_FALLBACK_CHARS ? `${chars.slice(0, MAX_FALLBACK_CHARS).join("")}…` : text;
}

/**
 * The stanza error condition and user-facing text for a Twilio error code. Unknown codes become
 * undefined-condition with the code and Twilio's own message (cleaned); known codes never echo Twilio's
 * message, so nothing about the account's credentials reaches the user.
 */
export function describeTwilioError(code: number | undefined, fallback?: string): TwilioErrorDescription {
  const label = code === undefined ? "Twilio error (no code given)" : `Twilio error ${code}`;
  const known = code === undefined ? undefined : KNOWN.get(ALIASES.get(code) ?? code);
  if (known !== undefined) return { condition: known.condition, text: `${known.text} (${label})` };
  const detail = fallback === undefined ? "" : cleanFallback(fallback);
  return {
    condition: "undefined-condition",
    text: `Twilio could not send the message (${label})${detail === "" ? "." : `: ${detail}`}`,
  };
}

/**
 * Order of Twilio MessageStatus values (twilio.com/docs/messaging/guides/outbound-message-status-in-status-
 * callbacks). Status callbacks can arrive out of order or twice; apply a status only when its rank is higher
 * than the stored one, so a message never moves backwards. Terminal states share a rank, so the first final
 * report wins; `read` (WhatsApp, RCS) follows `delivered`.
 */
const RANKS: ReadonlyMap<string, number> = new Map([
  ["accepted", 1], // Messaging Service, immediate send
  ["scheduled", 1], // Messaging Service, scheduled send
  ["queued", 1],
  ["sending", 2],
  ["sent", 3], // handed to the carrier; final when the carrier sends no delivery report
  ["delivered", 4],
  ["undelivered", 4],
  ["failed", 4],
  ["canceled", 4],
  ["partially_delivered", 4],
  ["read", 5],
]);

/** Lowest rank a terminal status has. */
/** Rank from which Twilio reports nothing more (except `read`). */
export const TERMINAL_RANK = 4;

/** Rank of an outbound MessageStatus; 0 for inbound (`receiving`, `received`) and unknown values. */
export function statusRank(status: string): number {
  return RANKS.get(status.trim().toLowerCase()) ?? 0;
}

/** Whether Twilio reports nothing more about the message after this status (except `read`). */
export function isTerminal(status: string): boolean {
  return statusRank(status) >= TERMINAL_RANK;
}
