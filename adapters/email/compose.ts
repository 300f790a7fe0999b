/**
 * XMPP message → mail: Subject, threading headers and text, as pure functions. Nothing a user typed reaches
 * a header with a line break in it: subjects and names are flattened here, and nodemailer encodes them
 * (RFC 2047) on top.
 */
import type Mail from "nodemailer/lib/mailer/index.js";
import type { Attachment } from "../../src/adapter.js";

/** RFC 5322 §2.1.1: a line SHOULD be at most 78 characters; a first line longer than that is cut. */
export const MAX_SUBJECT_CHARS = 78;
/** Message-IDs kept in References (RFC 5322 §3.6.4 sets no limit; the root and the latest ones matter). */
export const MAX_REFERENCES = 20;
/** Subject of a mail whose message had neither a subject nor any text. */
export const NO_SUBJECT = "(no subject)";

// eslint-disable-next-line no-control-regex
const LINE_BREAKS_AND_CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;

/** One header-safe line: CR, LF, NUL and other controls become spaces (RFC 5322 §2.2: no bare CR/LF). */
export function oneLine(text: string): string {
  return text.replace(LINE_BREAKS_AND_CONTROLS, " ").replace(/ {2,}/g, " ").trim();
}

function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max
    ? text
    : `${chars
        .slice(0, max - 1)
        .join("")
        .trimEnd()}…`;
}

/** What a conversation is about, without the reply prefixes mail clients add ("Re: Re: AW: x" → "x"). */
export function baseSubject(subject: string): string {
  return oneLine(subject).replace(/^((re|aw|sv|fwd?)\s*:\s*)+/i, "");
}

/**
 * The Subject of an outbound mail: the message's `<subject>`; else "Re: " and the subject of the thread it
 * continues; else the first line of the text, cut at MAX_SUBJECT_CHARS.
 */
export function subjectFor(subject: string | undefined, body: string, threadSubject?: string): string {
  const own = oneLine(subject ?? "");
  if (own) return own;
  if (threadSubject) return `Re: ${baseSubject(threadSubject)}`;
  // The first line with something readable in it (a line of control characters alone has nothing).
  const first = body
    .split(/\r\n|\r|\n/)
    .map(oneLine)
    .find((line) => line !== "");
  return first ? cut(first, MAX_SUBJECT_CHARS) : NO_SUBJECT;
}

/** The Message-IDs a reply refers to: the root first, then the latest, at most MAX_REFERENCES. */
export function trimReferences(refs: readonly string[]): string[] {
  if (refs.length <= MAX_REFERENCES) return [...refs];
  return [refs[0] ?? "", ...refs.slice(refs.length - MAX_REFERENCES + 1)];
}

/** The text of the mail: the body, then links to attachments that the body does not already show. */
export function mailText(body: string, attachments: readonly Attachment[]): string {
  const links = attachments
    .filter((a) => !body.includes(a.url))
    .map((a) => (a.desc ? `${oneLine(a.desc)}: ${a.url}` : a.url));
  return [body, ...links].filter((part) => part !== "").join("\n\n");
}

export interface OutboundMail {
  fromName: string | undefined;
  fromAddress: string;
  to: string;
  subject: string | undefined;
  body: string;
  attachments: readonly Attachment[];
  messageId: string;
  /** Message-IDs of the conversation so far, oldest first (the last is the one replied to). */
  references: readonly string[];
  threadSubject: string | undefined;
}

/** nodemailer's message for an outbound mail. */
export function composeMail(mail: OutboundMail): Mail.Options {
  const name = oneLine(mail.fromName ?? "");
  const refs = trimReferences(mail.references);
  const parent = refs.at(-1);
  return {
    from: name ? { name, address: mail.fromAddress } : mail.fromAddress,
    to: mail.to,
    subject: subjectFor(mail.subject, mail.body, mail.threadSubject),
    text: mailText(mail.body, mail.attachments),
    messageId: mail.messageId,
    // RFC 5322 §3.6.4: In-Reply-To names the parent, References the parent's references and the parent.
    ...(parent ? { inReplyTo: parent, references: refs } : {}),
    // The relay must not turn the text into something else.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}
