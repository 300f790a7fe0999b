/**
 * How the public listener hands out content that came from outside (mail attachments, MMS media): always as
 * a download, never as a page of the gateway's origin. `Content-Disposition: attachment`, a media type the
 * browser may not second-guess (`nosniff`), and a CSP that sandboxes whatever is opened anyway (no script,
 * no subresource, no form, an opaque origin).
 */
import type { FastifyReply } from "fastify";

/** Longest file name kept (for the download's name). */
export const MAX_FILE_NAME_CHARS = 120;
/** The Content-Security-Policy of every download. */
export const DOWNLOAD_CSP = "sandbox; default-src 'none'";

/** A file name safe for a Content-Disposition header: no controls, quotes or path separators. */
export function safeFileName(name: string | undefined, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = (name ?? "").replace(/[\u0000-\u001f\u007f"\\/]+/g, "_").trim();
  return [...(clean || fallback)].slice(0, MAX_FILE_NAME_CHARS).join("");
}

/**
 * A media type safe to send back: type/subtype from a plain set of characters, with at most a plain
 * charset parameter (every other parameter dropped); anything else is application/octet-stream.
 */
export function safeContentType(type: string | undefined): string {
  const [main = "", ...params] = (type ?? "").split(";");
  const t = main.toLowerCase().trim();
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(t)) return "application/octet-stream";
  const charset = params
    .map((p) => /^\s*charset\s*=\s*"?([a-z0-9._-]{1,40})"?\s*$/i.exec(p)?.[1])
    .find((c) => c !== undefined);
  return charset ? `${t}; charset=${charset.toLowerCase()}` : t;
}

/** Sets the headers of a download named `name` of type `type` (both from outside; made safe here). */
export function downloadHeaders(reply: FastifyReply, name: string, type: string | undefined): FastifyReply {
  const fileName = safeFileName(name, "attachment");
  return reply
    .header("x-content-type-options", "nosniff")
    .header("content-security-policy", DOWNLOAD_CSP)
    .header("cache-control", "private, no-store")
    .header("referrer-policy", "no-referrer")
    .header(
      "content-disposition",
      `attachment; filename="${fileName.replace(/[^\x20-\x7e]/g, "_")}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
    )
    .type(safeContentType(type));
}
