/** Mail → what the XMPP user reads: text (from HTML when that is all there is), subject, sender's name. */
import { createRequire } from "node:module";
import type { ParsedMail } from "mailparser";
import { oneLine } from "./compose.js";

const require = createRequire(import.meta.url);

/** Longest body passed on to XMPP (servers cap stanza sizes, Prosody at 256 KiB by default; 3 bytes a char). */
export const MAX_BODY_CHARS = 32 * 1024;
/** Longest sender name shown as the XEP-0172 nickname. */
export const MAX_NICK_CHARS = 64;
/** Said at the end of a body cut at MAX_BODY_CHARS. */
export const TRUNCATED_NOTE = "\n\n[… the rest of this mail was too long to show]";

/** HTML → plain text that reads well in a chat: links kept as "text [url]", no hard wrapping. */
export function htmlToChatText(html: string): string {
  // Loaded with the first HTML-only mail, not at start (an idle gateway does not need it); synchronously, as
  // reading a mail is a pure function.
  const { convert } = require("html-to-text") as typeof import("html-to-text");
  return convert(html, {
    wordwrap: false,
    selectors: [
      { selector: "img", format: "skip" },
      { selector: "h1", options: { uppercase: false } },
      { selector: "h2", options: { uppercase: false } },
      { selector: "h3", options: { uppercase: false } },
      { selector: "table", format: "dataTable", options: { uppercaseHeaderCells: false } },
    ],
  }).trim();
}

/** RFC 5322 §3.6.4 reference lists as mailparser gives them (one string or several). */
export function referencesOf(parsed: Pick<ParsedMail, "references">): string[] {
  const refs = parsed.references;
  return refs === undefined ? [] : Array.isArray(refs) ? refs : [refs];
}

export interface ReadMail {
  /** The text as sent (HTML turned into text), untrimmed of quotes, uncut; "" when there is none. */
  body: string;
  subject: string | undefined;
  nick: string | undefined;
  /** XEP-0203 timestamp from the Date header, when it is a real date. */
  delay: string | undefined;
}

/**
 * The Date header as an ISO timestamp; undefined when missing or not a date (mailparser puts "now" in place
 * of a bad one, which would show a made-up time).
 */
function dateOf(parsed: Pick<ParsedMail, "headerLines">): string | undefined {
  const line = parsed.headerLines.find((h) => h.key === "date")?.line ?? "";
  const time = Date.parse(line.replace(/^date:\s*/i, ""));
  return Number.isNaN(time) ? undefined : new Date(time).toISOString();
}

/** Body of a mail with no text at all (an empty body with a subject would read as a subject change alone). */
export const EMPTY_MAIL = "(this mail has no text)";

export function readMail(
  parsed: Pick<ParsedMail, "text" | "html" | "subject" | "from" | "headerLines">,
): ReadMail {
  let body = parsed.text?.trim() ?? "";
  if (!body && typeof parsed.html === "string") body = htmlToChatText(parsed.html);
  const subject = oneLine(parsed.subject ?? "") || undefined;
  const name = oneLine(parsed.from?.value[0]?.name ?? "");
  const nick = name ? [...name].slice(0, MAX_NICK_CHARS).join("") : undefined;
  return { body, subject, nick, delay: dateOf(parsed) };
}
