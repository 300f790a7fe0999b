/**
 * Files of inbound mail (attachments, and the full text of a mail shown shortened) kept in Redis and served
 * by the gateway's HTTP server under unguessable URLs that expire: the user gets them as jabber:x:oob links.
 */
import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AdapterContext, HttpContext } from "../../src/adapter.js";

/** Random bytes in a file token (base64url): a URL nobody can guess. */
export const FILE_TOKEN_BYTES = 24;
/** Longest file name kept (for the download's name). */
export const MAX_FILE_NAME_CHARS = 120;
const VERSION = "1";

export interface StoredFile {
  content: Buffer;
  contentType: string;
  name: string;
}

/** A file name safe for a Content-Disposition header: no controls, quotes or path separators. */
export function safeFileName(name: string | undefined, fallback: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = (name ?? "").replace(/[\u0000-\u001f\u007f"\\/]+/g, "_").trim();
  return [...(clean || fallback)].slice(0, MAX_FILE_NAME_CHARS).join("");
}

/** A media type safe to send back: type/subtype with parameters only from a plain set of characters. */
export function safeContentType(type: string | undefined): string {
  const t = (type ?? "").toLowerCase().trim();
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(t) ? t : "application/octet-stream";
}

export class MailFiles {
  constructor(
    private readonly ctx: Pick<AdapterContext, "redis" | "key">,
    private readonly http: HttpContext,
    private readonly ttlSeconds: number,
  ) {}

  /** Stores a file; returns its public URL. */
  async put(file: StoredFile): Promise<string> {
    const token = randomBytes(FILE_TOKEN_BYTES).toString("base64url");
    const key = this.ctx.key("file", token);
    await this.ctx.redis
      .multi()
      .hset(key, { v: VERSION, type: file.contentType, name: file.name, content: file.content })
      .expire(key, this.ttlSeconds)
      .exec();
    return this.http.publicUrlFor(`/files/${token}/${encodeURIComponent(file.name)}`);
  }

  /** GET /files/:token/:name → the file, or 404 when unknown or expired. */
  route(): void {
    this.http.route({
      method: "GET",
      url: "/files/:token/:name",
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const { token = "" } = request.params as { token?: string };
        const key = this.ctx.key("file", token);
        const [content, type, name] = /^[\w-]{32}$/.test(token)
          ? await this.ctx.redis.hmgetBuffer(key, "content", "type", "name")
          : [null, null, null];
        if (!content) return reply.code(404).type("text/plain").send("no such file (or it has expired)");
        const fileName = safeFileName(name?.toString("utf8"), "attachment");
        return reply
          .header("x-content-type-options", "nosniff")
          .header("content-security-policy", "sandbox")
          .header(
            "content-disposition",
            `inline; filename="${fileName.replace(/[^\x20-\x7e]/g, "_")}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
          )
          .type(safeContentType(type?.toString("utf8")))
          .send(content);
      },
    });
  }
}
