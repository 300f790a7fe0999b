/**
 * Files of inbound mail (attachments, and the full text of a mail shown shortened), served by the public
 * HTTP listener under unguessable URLs that expire: the user gets them as jabber:x:oob links.
 *
 * The bytes go to a BlobStore (a directory by default, file-store.ts); Redis keeps only metadata (token →
 * store id, name, type, size, owners, expiry), so whoever can mail an alias cannot fill the Redis that holds
 * every queue. Space is limited per alias and in total: a file over either quota is not kept, and the mail
 * still arrives with a note saying so. Expired files are swept (bytes removed, quota given back).
 */
import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Counter } from "prom-client";
import type { AdapterContext, HttpContext } from "../../src/adapter.js";
import { downloadHeaders } from "../../src/http/downloads.js";
import type { BlobStore } from "./file-store.js";

export { MAX_FILE_NAME_CHARS, safeContentType, safeFileName } from "../../src/http/downloads.js";

/** Random bytes in a file token (base64url): a URL nobody can guess. */
export const FILE_TOKEN_BYTES = 24;
/** How often expired files are looked for. */
export const FILES_SWEEP_INTERVAL_MS = 10 * 60_000;
/** Expired files removed per Redis round trip of a sweep. */
export const FILES_SWEEP_BATCH = 200;
/** The metadata outlives the link by this much, so a late sweep still knows what to remove and give back. */
export const FILE_META_GRACE_SECONDS = 7 * 24 * 3600;
/** Version of the metadata hash; "1" held the bytes themselves (still served until it expires). */
const VERSION = "2";
/** Field of the usage hash holding the total; per-alias fields are `alias:<name>`. */
const TOTAL = "total";

export interface StoredFile {
  content: Buffer;
  contentType: string;
  name: string;
}

export interface FileQuotas {
  /** Bytes of files one alias may hold at once. */
  maxBytesPerAlias: number;
  /** Bytes of files all aliases together may hold at once. */
  maxBytesTotal: number;
}

/** A file not kept; `reason` is said to the user in place of the link. */
export class FileRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** 1536 → "1.5 KB": sizes as people read them. */
export function humanSize(bytes: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/**
 * Reserves `size` bytes for every owner and the total, or none when any would go over its quota (atomic:
 * two mails at once cannot both take the last space). Returns "ok", "total" or the alias that is full.
 * One key (a hash), so it works on Redis Cluster too.
 */
const RESERVE = `
local size = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], '${TOTAL}') or '0') + size > tonumber(ARGV[2]) then return '${TOTAL}' end
for i = 4, #ARGV do
  if tonumber(redis.call('HGET', KEYS[1], 'alias:' .. ARGV[i]) or '0') + size > tonumber(ARGV[3]) then
    return ARGV[i]
  end
end
redis.call('HINCRBY', KEYS[1], '${TOTAL}', size)
for i = 4, #ARGV do redis.call('HINCRBY', KEYS[1], 'alias:' .. ARGV[i], size) end
return 'ok'
`;

/** Gives `size` bytes back to every owner and the total, never below zero. */
const RELEASE = `
local size = tonumber(ARGV[1])
local fields = { '${TOTAL}' }
for i = 2, #ARGV do fields[#fields + 1] = 'alias:' .. ARGV[i] end
for _, f in ipairs(fields) do
  local left = tonumber(redis.call('HGET', KEYS[1], f) or '0') - size
  if left > 0 then redis.call('HSET', KEYS[1], f, left) else redis.call('HDEL', KEYS[1], f) end
end
return 1
`;

export class MailFiles {
  private sweeper: NodeJS.Timeout | undefined;
  private readonly refusals: Counter<string> | undefined;

  constructor(
    private readonly ctx: Pick<AdapterContext, "redis" | "key" | "log"> &
      Partial<Pick<AdapterContext, "metrics">>,
    private readonly http: HttpContext,
    private readonly store: BlobStore,
    private readonly ttlSeconds: number,
    private readonly quotas: FileQuotas,
  ) {
    this.refusals = ctx.metrics?.counter(
      "files_refused_total",
      "Inbound mail files not kept (a note was delivered instead), by the quota that was full",
      ["quota"],
    );
    ctx.metrics?.gauge(
      "files_stored_bytes",
      "Bytes of inbound mail files kept, all aliases together",
      async (g) => g.set(await this.usage()),
    );
  }

  private get usageKey(): string {
    return this.ctx.key("files", "usage");
  }

  private get expiryKey(): string {
    return this.ctx.key("files", "expiry");
  }

  /** Bytes of files `alias` holds now (and the total, with no alias). */
  async usage(alias?: string): Promise<number> {
    return Number((await this.ctx.redis.hget(this.usageKey, alias ? `alias:${alias}` : TOTAL)) ?? 0);
  }

  /**
   * Stores a file for the aliases it was mailed to (each pays for it); returns its public URL. Throws
   * FileRefused when a quota is full.
   */
  async put(file: StoredFile, owners: readonly string[]): Promise<string> {
    const size = file.content.length;
    const aliases = [...new Set(owners)];
    const verdict = (await this.ctx.redis.eval(
      RESERVE,
      1,
      this.usageKey,
      size,
      this.quotas.maxBytesTotal,
      this.quotas.maxBytesPerAlias,
      ...aliases,
    )) as string;
    if (verdict !== "ok") this.refusals?.inc({ quota: verdict === TOTAL ? "total" : "alias" });
    if (verdict === TOTAL)
      throw new FileRefused(`the gateway's file space (${humanSize(this.quotas.maxBytesTotal)}) is full`);
    if (verdict !== "ok")
      throw new FileRefused(
        `the file space of ${verdict} (${humanSize(this.quotas.maxBytesPerAlias)}) is full; ` +
          "older files free it as they expire",
      );
    const token = randomBytes(FILE_TOKEN_BYTES).toString("base64url");
    const expires = Date.now() + this.ttlSeconds * 1000;
    const key = this.ctx.key("file", token);
    // Metadata first: whatever happens after, the sweep finds the file and gives the space back.
    await this.ctx.redis
      .multi()
      .hset(key, {
        v: VERSION,
        store: token,
        type: file.contentType,
        name: file.name,
        size: String(size),
        owners: aliases.join(" "),
        expires: String(expires),
      })
      .expire(key, this.ttlSeconds + FILE_META_GRACE_SECONDS)
      .zadd(this.expiryKey, expires, token)
      .exec();
    try {
      await this.store.write(token, file.content);
    } catch (err) {
      await this.forget(token).catch(() => undefined);
      throw err;
    }
    return this.http.publicUrlFor(`/files/${token}/${encodeURIComponent(file.name)}`);
  }

  /** Removes one file (bytes, metadata) and gives its space back; only the caller that wins does it. */
  private async forget(token: string): Promise<void> {
    if ((await this.ctx.redis.zrem(this.expiryKey, token)) !== 1) return;
    const key = this.ctx.key("file", token);
    const [store, size, owners] = await this.ctx.redis.hmget(key, "store", "size", "owners");
    if (store) await this.store.remove(store);
    if (size)
      await this.ctx.redis.eval(
        RELEASE,
        1,
        this.usageKey,
        size,
        ...(owners ?? "").split(" ").filter(Boolean),
      );
    await this.ctx.redis.del(key);
  }

  /** Removes every file expired at `now`; returns how many. */
  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    for (;;) {
      const tokens = await this.ctx.redis.zrangebyscore(
        this.expiryKey,
        0,
        now,
        "LIMIT",
        0,
        FILES_SWEEP_BATCH,
      );
      for (const token of tokens) {
        await this.forget(token);
        removed++;
      }
      if (tokens.length < FILES_SWEEP_BATCH) return removed;
    }
  }

  /** Sweeps now and every FILES_SWEEP_INTERVAL_MS until stop(). */
  startSweeping(): void {
    const run = () =>
      this.sweep().then(
        (removed) => {
          if (removed > 0) this.ctx.log.info({ removed }, "expired mail files removed");
        },
        (err: unknown) => this.ctx.log.warn({ err: (err as Error).message }, "mail file sweep failed"),
      );
    void run();
    this.sweeper = setInterval(() => void run(), FILES_SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** GET /files/:token/:name → the file as a download, or 404 when unknown or expired. */
  route(): void {
    this.http.route({
      method: "GET",
      url: "/files/:token/:name",
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const { token = "" } = request.params as { token?: string };
        const gone = () => reply.code(404).type("text/plain").send("no such file (or it has expired)");
        if (!/^[\w-]{32}$/.test(token)) return gone();
        const key = this.ctx.key("file", token);
        const [v, store, type, name, size, expires] = await this.ctx.redis.hmget(
          key,
          "v",
          "store",
          "type",
          "name",
          "size",
          "expires",
        );
        if (v === "1") {
          // Written by an older release with the bytes in Redis; served until its key expires.
          const [content] = await this.ctx.redis.hmgetBuffer(key, "content");
          if (!content) return gone();
          return downloadHeaders(reply, name ?? "attachment", type ?? undefined).send(content);
        }
        if (!store || Number(expires ?? 0) <= Date.now()) return gone();
        const stream = await this.store.read(store);
        if (!stream) return gone();
        if (size) reply.header("content-length", size);
        return downloadHeaders(reply, name ?? "attachment", type ?? undefined).send(stream);
      },
    });
  }
}
