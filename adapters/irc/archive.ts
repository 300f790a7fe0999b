/**
 * The channel archive: every line said in an IRC channel the gateway's connections are in (messages, /me,
 * notices, topic changes) is kept once in a Redis stream per (server, channel), whatever the number of
 * bridged users who heard it. The stream entry's id is the line's archive id: live delivery carries it as
 * the XEP-0359 stanza-id (by the room), and XEP-0313 MAM and the XEP-0045 join history return it.
 *
 * Once, not once per user: each connection in the channel receives the same line. The first to arrive claims
 * a short-lived key (SET NX) holding the archive id and appends the line; the others read the id. The key is
 * the server's IRCv3 msgid when it sends one, else (nick, hash of the text, how many times this connection
 * saw that same nick say that same text within DEDUPE_WINDOW_MS): two connections hearing "ok" twice from
 * bob agree that the second "ok" is a second line. One Lua script, one round trip.
 *
 * Retention: XADD MAXLEN ~ (count) and XTRIM MINID (age, exact) on every append, and the age again before
 * every read (a quiet channel has no appends): a line older than maxDays is never served, and is deleted by
 * the next line or query of its channel. "~" trims whole stream nodes (Redis's stream-node-max-entries, 100
 * by default), so a channel keeps up to one node more lines than asked; below EXACT_TRIM_BELOW lines the
 * count is trimmed exactly. The age is always exact: "~" would keep a quiet channel's old lines for as long
 * as their node holds a newer one.
 *
 * Keys share the channel's hash tag (`{server/channel}`), so the script runs on one Redis Cluster slot.
 * Entry fields (version 1; a later release adds fields, never renames): n nick, b body, s subject.
 */
import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { RedisClient } from "../../src/store/redis-client.js";
import type { InboundEvent, KeyBuilder } from "../../src/adapter.js";
import { LuaScript } from "../../src/store/lua.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import type { ArchivePolicy } from "./config.js";

/** How long two connections' copies of one line count as the same line (they arrive within milliseconds). */
export const DEDUPE_WINDOW_MS = 30_000;
/** Lines whose archive id this process remembers for its other connections (see ChannelArchive.recent). */
export const RECENT_LINES = 10_000;
/** (nick, text) pairs one connection counts at once for the dedupe ordinal; the oldest go first. */
export const MAX_ORDINAL_ENTRIES = 5_000;
/**
 * Below this many lines a channel is trimmed exactly (MAXLEN n): "~" keeps up to a whole stream node (100
 * entries) more, which matters for a small archive. From it on, "~" (whole nodes, cheaper).
 */
export const EXACT_TRIM_BELOW = 1_000;
/** Entries read per round trip when a filter (`with`) or a time bound makes a page skip lines. */
export const SCAN_BATCH = 500;

/** What a connection saw said in a channel. */
export interface ChannelLine {
  /** Sender's nick; absent for the server (a topic set by services). */
  nick?: string;
  /** As the user sees it: formatting turned to text, "/me " for actions. "" for a topic change. */
  body: string;
  subject?: string;
  /** IRCv3 msgid tag, when the server gives one. */
  msgid?: string;
}

export interface StoredLine {
  id: string;
  ms: number;
  nick?: string;
  body: string;
  subject?: string;
}

/** A range of the archive, as MAM and the join history ask for it. */
export interface RangeQuery {
  startMs?: number;
  endMs?: number;
  nick?: string;
  max: number;
  after?: string;
  /** "" for the last page. */
  before?: string;
}

export interface RangePage {
  lines: StoredLine[];
  complete: boolean;
  count?: number;
}

/**
 * KEYS[1] stream, KEYS[2] dedupe key, KEYS[3] opt-out marker; ARGV[1] dedupe ms, ARGV[2] max lines,
 * ARGV[3] max age ms (0: none), ARGV[4] "~" or "=" (count trimming), ARGV[5..] field/value pairs. The archive id, or false when opted out.
 */
const RECORD = new LuaScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return false end
local seen = redis.call('GET', KEYS[2])
if seen then return seen end
local args = {'XADD', KEYS[1], 'MAXLEN', ARGV[4], ARGV[2], '*'}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
local id = redis.call(unpack(args))
redis.call('SET', KEYS[2], id, 'PX', ARGV[1])
local age = tonumber(ARGV[3])
if age > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('XTRIM', KEYS[1], 'MINID', tostring(now - age))
end
return id`);

const ID = /^\d{1,20}-\d{1,20}$/;

/** How many times one connection saw (channel, nick, text) lately: the dedupe key's ordinal. */
export class Ordinals {
  private readonly seen = new Map<string, { n: number; at: number }>();

  next(key: string, now = Date.now()): number {
    const last = this.seen.get(key);
    const n = last && now - last.at < DEDUPE_WINDOW_MS ? last.n + 1 : 1;
    this.seen.delete(key);
    this.seen.set(key, { n, at: now });
    // Bounded: the least recently seen pair goes (Map keeps insertion order).
    if (this.seen.size > MAX_ORDINAL_ENTRIES) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return n;
  }
}

type Entry = [id: string, fields: string[]];

function toLine([id, fields]: Entry): StoredLine {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] ?? "", fields[i + 1] ?? "");
  const nick = f.get("n");
  const subject = f.get("s");
  return {
    id,
    ms: Number(id.slice(0, id.indexOf("-"))),
    body: f.get("b") ?? "",
    ...(nick ? { nick } : {}),
    ...(subject === undefined ? {} : { subject }),
  };
}

export class ChannelArchive {
  /**
   * What this process recorded lately, by dedupe key: every connection of the process that hears a line takes
   * its archive id from here instead of asking Redis again (ten bridged users in a channel: one script, not ten).
   */
  private readonly recent = new LRUCache<string, Promise<string | undefined>>({
    max: RECENT_LINES,
    ttl: DEDUPE_WINDOW_MS,
  });

  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    private readonly policy: (server: string) => ArchivePolicy,
  ) {}

  private keys(server: string, channel: string) {
    const tag = `{${server}/${channel.toLowerCase()}}`;
    return {
      stream: this.key.own("mam", tag),
      off: this.key.own("mam-off", tag),
      readers: this.key.own("mam-readers", tag),
      seen: (...parts: string[]) => this.key.own("mam-seen", tag, ...parts),
    };
  }

  /** Stores a line once for all connections; its archive id, or undefined when the channel is not archived. */
  async record(
    ordinals: Ordinals,
    server: string,
    channel: string,
    line: ChannelLine,
  ): Promise<string | undefined> {
    const policy = this.policy(server);
    if (!policy.enabled) return undefined;
    const k = this.keys(server, channel);
    let seen: string;
    if (line.msgid !== undefined) seen = k.seen("id", line.msgid);
    else {
      const nick = (line.nick ?? "").toLowerCase();
      const hash = createHash("sha1")
        .update(`${line.body}\0${line.subject ?? ""}`)
        .digest("base64url")
        .slice(0, 16);
      seen = k.seen(nick, hash, String(ordinals.next(`${channel.toLowerCase()}\0${nick}\0${hash}`)));
    }
    const fields = [
      ...(line.nick ? ["n", line.nick] : []),
      "b",
      line.body,
      ...(line.subject === undefined ? [] : ["s", line.subject]),
    ];
    const known = this.recent.get(seen);
    if (known) return known;
    const recorded = RECORD.run(
      this.redis,
      [k.stream, seen, k.off],
      [
        DEDUPE_WINDOW_MS,
        policy.maxLines,
        Math.round(policy.maxDays * 86_400_000),
        policy.maxLines < EXACT_TRIM_BELOW ? "=" : "~",
        ...fields,
      ],
    ).then((id) => (id as string | null) ?? undefined);
    this.recent.set(seen, recorded);
    // A failed write is not remembered: the next connection hearing the line tries again.
    recorded.catch(() => this.recent.delete(seen));
    return recorded;
  }

  async isOff(server: string, channel: string): Promise<boolean> {
    return (await this.redis.exists(this.keys(server, channel).off)) === 1;
  }

  /** Stops (and deletes) or starts again the archive of a channel. */
  async setOff(server: string, channel: string, off: boolean): Promise<void> {
    const k = this.keys(server, channel);
    if (off) await this.redis.multi().set(k.off, "1").del(k.stream).exec();
    else await this.redis.del(k.off);
    this.recent.clear();
  }

  /** Remembers that a user joined the channel through the gateway (who may read its archive). */
  async addReader(server: string, channel: string, user: string): Promise<void> {
    await this.redis.sadd(this.keys(server, channel).readers, user.toLowerCase());
  }

  async isReader(server: string, channel: string, user: string): Promise<boolean> {
    return (await this.redis.sismember(this.keys(server, channel).readers, user.toLowerCase())) === 1;
  }

  private async exists(stream: string, id: string): Promise<boolean> {
    if (!ID.test(id)) return false;
    return ((await this.redis.xrange(stream, id, id, "COUNT", 1)) as Entry[]).length === 1;
  }

  /**
   * One page of a range, oldest first. Forward from `after` (or the start), or backward from `before` (or the
   * end, for `before` ""). An `after`/`before` id that is not in the archive is item-not-found.
   */
  async page(server: string, channel: string, q: RangeQuery): Promise<RangePage> {
    const { stream } = this.keys(server, channel);
    const maxAgeMs = Math.round(this.policy(server).maxDays * 86_400_000);
    if (maxAgeMs > 0) await this.redis.xtrim(stream, "MINID", String(Date.now() - maxAgeMs));
    for (const [name, id] of [
      ["after", q.after],
      ["before", q.before],
    ] as const)
      if (id !== undefined && id !== "" && !(await this.exists(stream, id)))
        throw new GatewayError(
          "item-not-found",
          `${id} (in <${name}/>) is not in this room's archive; it may have been removed by the retention.`,
        );
    const lo = q.startMs === undefined ? "-" : String(q.startMs);
    const hi = q.endMs === undefined ? "+" : String(q.endMs);
    const nick = q.nick?.toLowerCase();
    const keep = (line: StoredLine): boolean => nick === undefined || line.nick?.toLowerCase() === nick;
    const backward = q.before !== undefined;
    const want = q.max + 1;
    // Without a filter every entry read is kept: read exactly what the page needs.
    const batch = nick === undefined ? Math.max(want, 1) : SCAN_BATCH;
    let cursor = backward
      ? q.before === ""
        ? hi
        : `(${q.before}`
      : q.after === undefined
        ? lo
        : `(${q.after}`;
    const found: StoredLine[] = [];
    for (;;) {
      const entries = (
        backward
          ? await this.redis.xrevrange(stream, cursor, lo, "COUNT", batch)
          : await this.redis.xrange(stream, cursor, hi, "COUNT", batch)
      ) as Entry[];
      for (const entry of entries) {
        const line = toLine(entry);
        // An after/before id outside the time bounds: skip to the range.
        if (q.startMs !== undefined && line.ms < q.startMs) continue;
        if (q.endMs !== undefined && line.ms > q.endMs) continue;
        if (keep(line)) found.push(line);
        if (found.length >= want) break;
      }
      const last = entries[entries.length - 1];
      if (found.length >= want || entries.length < batch || last === undefined) break;
      cursor = `(${last[0]}`;
    }
    const complete = found.length <= q.max;
    const lines = found.slice(0, q.max);
    if (backward) lines.reverse();
    const unfiltered = q.startMs === undefined && q.endMs === undefined && nick === undefined;
    return { lines, complete, ...(unfiltered ? { count: await this.redis.xlen(stream) } : {}) };
  }

  /** Lines in the archive (for the benchmark and the admins). */
  async length(server: string, channel: string): Promise<number> {
    return this.redis.xlen(this.keys(server, channel).stream);
  }

  /** The stream's key (for the benchmark's MEMORY USAGE). */
  streamKey(server: string, channel: string): string {
    return this.keys(server, channel).stream;
  }
}

/** The events of one channel line, each carrying the line's archive id once it is known. */
export async function withArchiveId(
  events: InboundEvent[],
  archived: Promise<string | undefined>,
): Promise<InboundEvent[]> {
  const archiveId = await archived;
  if (archiveId === undefined) return events;
  return events.map((e) => (e.kind === "message" ? { ...e, archiveId } : e));
}
