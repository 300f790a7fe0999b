/**
 * What the user sees of an inbound mail: the new text (quotes and signature cut, with a link to the whole
 * mail), attachments as links, and a plain warning first when the sender could not be verified.
 */
import type { ParsedMail } from "mailparser";
import type { Attachment } from "../../src/adapter.js";
import { unverifiedNote } from "./auth.js";
import { oneLine } from "./compose.js";
import { FileRefused, humanSize, safeContentType, safeFileName, type StoredFile } from "./files.js";
import { stripQuoted } from "./quotes.js";
import { EMPTY_MAIL, MAX_BODY_CHARS, TRUNCATED_NOTE } from "./read.js";

/** Most attachments passed on as links from one mail (the rest are named in the text). */
export const MAX_LINKED_ATTACHMENTS = 10;
/** Attachment names listed when they cannot be passed on. */
export const MAX_LISTED_ATTACHMENTS = 5;

/** Where files go; absent when the HTTP server is off (then attachments are only named). */
export type FileSink = ((file: StoredFile) => Promise<string>) | undefined;

export interface Presented {
  body: string;
  attachments: Attachment[];
}

/** The attachments a reader would call files (not images embedded in the HTML). */
export function filesOf(attachments: ParsedMail["attachments"]): ParsedMail["attachments"] {
  return attachments.filter((a) => !(a.related && a.contentDisposition === "inline"));
}

function listed(names: string[], total: number): string {
  const more = total > names.length ? ` and ${total - names.length} more` : "";
  return `${names.join(", ")}${more}`;
}

/** The file's URL, or why it was not kept (a quota); other failures throw (the mail is refused with 451). */
async function kept(
  sink: (file: StoredFile) => Promise<string>,
  file: StoredFile,
): Promise<string | FileRefused> {
  try {
    return await sink(file);
  } catch (err) {
    if (err instanceof FileRefused) return err;
    throw err;
  }
}

export async function presentMail(
  text: string,
  attachments: ParsedMail["attachments"],
  options: { files: FileSink; verifiedSender: string | null; unverified: boolean },
): Promise<Presented> {
  const parts: string[] = [];
  if (options.unverified) parts.push(unverifiedNote(options.verifiedSender ?? "the address shown"));
  const files = filesOf(attachments);
  let body = text || (files.length > 0 ? "" : EMPTY_MAIL);
  if (options.files) {
    const { text: shown, stripped } = stripQuoted(text);
    if (stripped) {
      // Not kept (over quota): the quoted text stays in the message instead.
      const url = await kept(options.files, {
        content: Buffer.from(text, "utf8"),
        contentType: "text/plain; charset=utf-8",
        name: "mail.txt",
      });
      if (typeof url === "string") body = `${shown}\n\n[quoted text hidden; the whole mail: ${url}]`;
    }
  }
  if (body.length > MAX_BODY_CHARS) body = body.slice(0, MAX_BODY_CHARS) + TRUNCATED_NOTE;
  parts.push(body);
  const out: Attachment[] = [];
  const names = files.map((a) => oneLine(a.filename ?? "") || a.contentType);
  if (files.length > 0 && options.files) {
    const links: string[] = [];
    for (const [i, file] of files.slice(0, MAX_LINKED_ATTACHMENTS).entries()) {
      const name = safeFileName(file.filename, `attachment-${i + 1}`);
      const url = await kept(options.files, {
        content: file.content,
        contentType: safeContentType(file.contentType),
        name,
      });
      if (typeof url === "string") {
        out.push({ url, desc: name });
        links.push(`📎 ${name}: ${url}`);
      } else links.push(`📎 ${name} (${humanSize(file.content.length)}) was not kept: ${url.reason}.`);
    }
    parts.push(links.join("\n"));
    if (files.length > MAX_LINKED_ATTACHMENTS)
      parts.push(
        `[${files.length - MAX_LINKED_ATTACHMENTS} more attachment(s) not shown: ${listed(names.slice(MAX_LINKED_ATTACHMENTS, MAX_LINKED_ATTACHMENTS + MAX_LISTED_ATTACHMENTS), files.length - MAX_LINKED_ATTACHMENTS)}]`,
      );
  } else if (files.length > 0) {
    parts.push(
      `[${files.length} attachment(s) not shown here: ${listed(names.slice(0, MAX_LISTED_ATTACHMENTS), files.length)}]`,
    );
  }
  return { body: parts.filter((p) => p.trim() !== "").join("\n\n") || EMPTY_MAIL, attachments: out };
}
