/**
 * Bounces: every outbound mail leaves with its own envelope sender `bounces+<token>@<mail domain>` (VERP),
 * the token unguessable and mapped in Redis to the mail (user, contact, stanza id). A delivery status
 * notification (RFC 3464, multipart/report) to that address becomes an error on the user's message.
 */
import { randomBytes } from "node:crypto";
import type { IdMap } from "../../src/adapter.js";
import { oneLine } from "./compose.js";

/** Local-part prefix of bounce addresses; no alias may start with it. */
export const BOUNCE_PREFIX = "bounces+";
/** Random bytes in a bounce token (base64url): nobody can guess the address of somebody else's mail. */
export const BOUNCE_TOKEN_BYTES = 18;
/** Longest diagnostic quoted to the user. */
export const MAX_DIAGNOSTIC_CHARS = 300;
const VERSION = "1";

export interface SentMail {
  user: string;
  /**
   * The full JID that sent the message: RFC 6121 §8.5.2.1.1 has servers drop error messages to a bare
   * JID, so the error goes back to the client that sent it (as XEP-0184 receipts do).
   */
  sender: string;
  /** The contact's JID (the error comes from it). */
  contact: string;
  /** The address the mail went to. */
  to: string;
  /** The stanza id of the user's message. */
  stanzaId: string;
  messageId: string;
}

/** The token of a bounce address's local-part, or null when it is not one. */
export function bounceToken(localPart: string): string | null {
  const lower = localPart.toLowerCase();
  if (!lower.startsWith(BOUNCE_PREFIX)) return null;
  const token = localPart.slice(BOUNCE_PREFIX.length);
  return /^[\w-]{16,64}$/.test(token) ? token : null;
}

/** One recipient's fields of a message/delivery-status part (RFC 3464 §2.3). */
export interface RecipientStatus {
  recipient: string | undefined;
  action: string | undefined;
  status: string | undefined;
  diagnostic: string | undefined;
}

/** Unfolds header-style lines (RFC 3464 §2.1 uses RFC 822 folding). */
function unfold(text: string): string[] {
  return text.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/);
}

/**
 * The per-recipient groups of a message/delivery-status body (the per-message group has neither Action nor
 * Final-Recipient and is skipped). Also works on a whole text that has the part inlined.
 */
export function parseDeliveryStatus(text: string): RecipientStatus[] {
  const groups = text.split(/\r?\n\s*\r?\n/);
  const out: RecipientStatus[] = [];
  for (const group of groups) {
    const fields = new Map<string, string>();
    for (const line of unfold(group)) {
      const colon = line.indexOf(":");
      if (colon > 0) fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (!fields.has("action") && !fields.has("final-recipient")) continue;
    // "rfc822; friend@example.com" → the address; "smtp; 550 5.1.1 …" → the reply.
    const value = (name: string) => fields.get(name)?.replace(/^[\w-]+\s*;\s*/, "");
    out.push({
      recipient: value("final-recipient") ?? value("original-recipient"),
      action: fields.get("action")?.toLowerCase(),
      status: fields.get("status"),
      diagnostic: value("diagnostic-code"),
    });
  }
  return out;
}

/** What the user reads about a bounce: the address, whether it failed or is delayed, and why. */
export function bounceText(mail: Pick<SentMail, "to">, status: RecipientStatus | undefined): string {
  const why = oneLine(status?.diagnostic ?? status?.status ?? "no reason given");
  const reason = why.length > MAX_DIAGNOSTIC_CHARS ? `${why.slice(0, MAX_DIAGNOSTIC_CHARS)}…` : why;
  if (status?.action === "delayed")
    return `Your mail to ${mail.to} is delayed; the mail system keeps trying (${reason}).`;
  return `Your mail to ${mail.to} could not be delivered: ${reason}`;
}

/** Whether a DSN says the mail failed for good (as opposed to delayed, relayed or delivered). */
export function isFailure(status: RecipientStatus | undefined): boolean {
  if (!status) return true;
  return status.action === "failed" || (status.action === undefined && /^5/.test(status.status ?? ""));
}

export class BounceStore {
  constructor(
    private readonly ids: IdMap,
    private readonly ttlSeconds: number,
  ) {}

  /**
   * Remembers a mail about to be sent: the token for its envelope sender at once, and the write of the record
   * (`stored`), which the caller sends along with what it does next.
   */
  create(mail: SentMail): { token: string; stored: Promise<void> } {
    const token = randomBytes(BOUNCE_TOKEN_BYTES).toString("base64url");
    return { token, stored: this.ids.put("bounce", token, { v: VERSION, ...mail }, this.ttlSeconds) };
  }

  async get(token: string): Promise<SentMail | null> {
    const r = await this.ids.get("bounce", token);
    if (!r?.user || !r.contact || !r.stanzaId) return null;
    return {
      user: r.user,
      sender: r.sender || r.user,
      contact: r.contact,
      to: r.to ?? "",
      stanzaId: r.stanzaId,
      messageId: r.messageId ?? "",
    };
  }
}
