/**
 * The one schema every inbound event passes before it is persisted (AdapterContext.deliver) and again
 * before the deliverer turns a stored entry into a stanza. Values from outside (IRC tags, webhook fields,
 * mail headers) reach stanza attributes and text: one control character would make the XMPP server close
 * the component stream, and a stanza over the server's size limit does the same, holding the whole domain
 * down. Text and ids are cleaned (characters XML cannot carry are removed, an over-long body is cut); what
 * cannot be cleaned (a JID that does not parse, an empty or over-long id) is refused with
 * InvalidInboundEventError. A delay stamp that is not ISO 8601 is dropped: the message still goes out,
 * without the timestamp.
 */
import { z } from "zod";
import { InvalidInboundEventError } from "./refused.js";
import type { InboundEvent } from "../adapter.js";
import { isErrorCondition } from "../xmpp/errors.js";
import { xmlSafe } from "../xmpp/stanzas.js";

/** Longest stanza id (ids come from networks: Twilio SIDs, Message-ID hashes, IRC msgid tags). */
export const MAX_EVENT_ID_CHARS = 256;
/** RFC 7622 §3.1: a JID is at most 3071 bytes (three parts of 1023). */
export const MAX_JID_BYTES = 3071;
/**
 * Longest body, in UTF-8 bytes; a longer one is cut. Prosody closes a component stream on a stanza over
 * 512 KiB (component_stanza_size_limit): this leaves room for the rest of the stanza.
 */
export const MAX_BODY_BYTES = 256 * 1024;
/** Longest subject, thread, nick, status, error text or attachment description, in characters. */
export const MAX_SHORT_TEXT_CHARS = 4_096;
/** Longest attachment URL. */
export const MAX_URL_CHARS = 4_096;
/** Most attachments on one message. */
export const MAX_ATTACHMENTS = 32;
/** Most MUC status codes on one presence. */
export const MAX_STATUS_CODES = 16;

export { InvalidInboundEventError };

const CUT_NOTE = "\n[…cut: the message was too long]";

/** Cuts `text` to at most `maxBytes` UTF-8 bytes on a character boundary, saying so. */
export function cutToBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  const room = maxBytes - Buffer.byteLength(CUT_NOTE, "utf8");
  let out = "";
  let used = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, "utf8");
    if (used + size > room) break;
    out += ch;
    used += size;
  }
  return out + CUT_NOTE;
}

const safeText = (max: number) => z.string().transform((s) => xmlSafe(s).slice(0, max));

const id = z
  .string()
  .transform(xmlSafe)
  .pipe(z.string().min(1, "empty id").max(MAX_EVENT_ID_CHARS, "id too long"));

/** The domain part of `value` when it has the shape of a JID (RFC 7622 §3), else undefined. */
export function jidDomain(value: string): string | undefined {
  const slash = value.indexOf("/");
  const bare = slash === -1 ? value : value.slice(0, slash);
  if (slash !== -1 && slash === value.length - 1) return undefined; // empty resource
  const at = bare.indexOf("@");
  const local = at === -1 ? undefined : bare.slice(0, at);
  const domain = at === -1 ? bare : bare.slice(at + 1);
  if (local !== undefined && !/^[^\s"&'/:<>@]+$/u.test(local)) return undefined;
  if (!/^[^\s"&'/:<>@]+$/u.test(domain) || domain.startsWith(".") || domain.endsWith(".")) return undefined;
  return domain;
}

const jid = z.string().superRefine((value, ctx) => {
  if (xmlSafe(value) !== value || jidDomain(value) === undefined)
    ctx.addIssue({ code: "custom", message: "not a JID" });
  else if (Buffer.byteLength(value, "utf8") > MAX_JID_BYTES)
    ctx.addIssue({ code: "custom", message: "JID too long" });
});

/** XEP-0082 date-time; anything else is dropped (the message goes out without XEP-0203 delay). */
const stamp = z.iso
  .datetime({ offset: true })
  .optional()
  .catch(() => undefined);

const condition = z.string().refine(isErrorCondition, "unknown error condition");

const message = z.object({
  kind: z.literal("message"),
  to: jid,
  from: jid,
  id,
  type: z.enum(["chat", "normal", "groupchat", "headline"]).optional(),
  body: z.string().transform((s) => cutToBytes(xmlSafe(s), MAX_BODY_BYTES)),
  subject: safeText(MAX_SHORT_TEXT_CHARS).optional(),
  thread: safeText(MAX_SHORT_TEXT_CHARS).optional(),
  attachments: z
    .array(
      z.object({
        url: z.url().max(MAX_URL_CHARS).transform(xmlSafe),
        desc: safeText(MAX_SHORT_TEXT_CHARS).optional(),
      }),
    )
    .max(MAX_ATTACHMENTS)
    .optional(),
  delay: stamp,
  nick: safeText(MAX_SHORT_TEXT_CHARS).optional(),
  requestReceipt: z.boolean().optional(),
  markable: z.boolean().optional(),
  replaces: id.optional(),
  archiveId: id.optional(),
});

const receipt = z.object({ kind: z.literal("receipt"), to: jid, from: jid, id, receiptFor: id });

const error = z.object({
  kind: z.literal("error"),
  to: jid,
  from: jid,
  id,
  condition,
  text: safeText(MAX_SHORT_TEXT_CHARS),
});

const presence = z.object({
  kind: z.literal("presence"),
  to: jid,
  from: jid,
  id: id.optional(),
  type: z.enum(["unavailable", "error"]).optional(),
  show: z.enum(["away", "chat", "dnd", "xa"]).optional(),
  status: safeText(MAX_SHORT_TEXT_CHARS).optional(),
  muc: z
    .object({
      affiliation: z.enum(["owner", "admin", "member", "outcast", "none"]),
      role: z.enum(["moderator", "participant", "visitor", "none"]),
      jid: jid.optional(),
      nick: safeText(MAX_SHORT_TEXT_CHARS).optional(),
      statusCodes: z.array(z.number().int().min(100).max(999)).max(MAX_STATUS_CODES).optional(),
      reason: safeText(MAX_SHORT_TEXT_CHARS).optional(),
      actor: safeText(MAX_SHORT_TEXT_CHARS).optional(),
    })
    .optional(),
  error: z.object({ condition, text: safeText(MAX_SHORT_TEXT_CHARS) }).optional(),
});

export const inboundEventSchema = z.discriminatedUnion("kind", [message, receipt, error, presence]);

function problemsOf(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.join(".") || "event"}: ${i.message}`);
}

/**
 * The cleaned event, or InvalidInboundEventError. With `domain`, the sender must be on it (the XMPP server
 * closes a component stream that sends from another domain: RFC 6120 / XEP-0114 `invalid-from`).
 */
export function checkInboundEvent(event: unknown, domain?: string): InboundEvent {
  const result = inboundEventSchema.safeParse(event);
  if (!result.success) throw new InvalidInboundEventError(problemsOf(result.error));
  const checked: InboundEvent = result.data;
  if (domain !== undefined) {
    if (jidDomain(checked.from)?.toLowerCase() !== domain.toLowerCase())
      throw new InvalidInboundEventError([`from: not on the gateway's domain ${domain}`]);
  }
  return checked;
}
