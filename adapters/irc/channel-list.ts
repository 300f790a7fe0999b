/**
 * An IRC network's channels as the disco#items of its server JID (`irc.example.net@irc.example.org`, as
 * biboumi lists them): LIST is sent on the asking user's own connection (opened if needed, as a join would),
 * RPL_LIST (322) lines are collected until RPL_LISTEND (323), and the list is kept in Redis for
 * channelListCacheSeconds, so the next users are answered from the copy. One LIST at a time per server:
 * concurrent askers in this process share it, and other instances wait for the copy (a lock in Redis).
 * The core pages the items with XEP-0059.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { RedisClient } from "../../src/store/redis-client.js";
import type { DiscoItem, EntityInfo, KeyBuilder } from "../../src/adapter.js";
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { NS } from "../../src/xmpp/ns.js";
import { mircToText } from "./format.js";
import type { IrcMessage } from "./message.js";
import type { IrcSession } from "./session.js";

/**
 * Channels kept of one LIST: beyond, the rest is not read into the list (the largest networks list some tens
 * of thousands; a hostile server could send millions). The list then says it is cut short.
 */
export const MAX_LISTED_CHANNELS = 100_000;
/** Longest one instance holds the right to LIST a server; another instance may LIST once it lapsed. */
export const LIST_LOCK_SECONDS = 120;
/** How often an instance waiting for another's LIST looks for the copy in Redis. */
export const LIST_POLL_MS = 250;
/** Version of the stored list (see STYLE: stored values carry a version). */
const STORED_VERSION = 1;

/**
 * Numerics refusing a LIST: RPL_TRYAGAIN (263, "server load is too heavy", biboumi handles it too) and
 * ERR_TOOMANYMATCHES (416); any other error numeric naming LIST (421 unknown command, 481 no privileges…).
 */
const LIST_REFUSALS = new Set(["263", "416"]);

export interface ListedChannel {
  name: string;
  users: number;
  topic: string;
}

export interface ChannelList {
  channels: ListedChannel[];
  /** More than MAX_LISTED_CHANNELS were listed: the rest was left out. */
  truncated: boolean;
}

/** InspIRCd and UnrealIRCd put the channel's modes before the topic in RPL_LIST: `[+nt] topic`. */
const LIST_MODES = /^\[\+[A-Za-z]*(?: [^\]]*)?\] ?/;

/** One RPL_LIST line (`<me> <channel> <users> :<topic>`) → a channel, or null when malformed. */
export function listedChannel(args: readonly string[]): ListedChannel | null {
  const [, name, users, topic = ""] = args;
  if (name === undefined || users === undefined || !/^\d{1,9}$/.test(users)) return null;
  return { name, users: Number(users), topic: topic.replace(LIST_MODES, "") };
}

/** Most users first, then by name: a user browsing a network finds its main channels on the first page. */
export function sortChannels(channels: ListedChannel[]): ListedChannel[] {
  return channels.sort((a, b) => b.users - a.users || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The item's name: `#chan (N users): topic`, the topic as plain text (mIRC formatting read). */
export function itemName(channel: ListedChannel): string {
  const topic = mircToText(channel.topic).trim();
  const users = `${channel.users} ${channel.users === 1 ? "user" : "users"}`;
  return `${channel.name} (${users})${topic === "" ? "" : `: ${topic}`}`;
}

/** The disco items of a list; channels with no JID (a name the codec refuses) are left out. */
export function channelItems(list: ChannelList, jidOf: (channel: string) => string | null): DiscoItem[] {
  const items: DiscoItem[] = [];
  for (const channel of list.channels) {
    const jid = jidOf(channel.name);
    if (jid !== null) items.push({ jid, name: itemName(channel) });
  }
  return items;
}

/** What a server JID is (XEP-0030): a chat service listing its rooms, paged with XEP-0059. */
export function serverInfo(server: string): EntityInfo {
  return {
    // XEP-0045 §6.1: a service whose items are rooms; "irc" as biboumi's and Spectrum's conference type.
    identities: [{ category: "conference", type: "irc", name: `IRC server ${server}` }],
    features: [NS.DISCO_INFO, NS.DISCO_ITEMS, NS.RSM, NS.MUC],
  };
}

/**
 * Sends LIST on the session and collects its answer until RPL_LISTEND. Fails with remote-server-timeout
 * after `idleMs` without a line of the list, and with the server's own text when it refuses the LIST.
 */
export function collectChannelList(
  session: IrcSession,
  idleMs: number,
  max = MAX_LISTED_CHANNELS,
): Promise<ChannelList> {
  const server = session.server;
  const channels: ListedChannel[] = [];
  let truncated = false;
  return new Promise<ChannelList>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let stop: () => void = () => undefined;
    const finish = (err: GatewayError | null) => {
      clearTimeout(timer);
      stop();
      if (err) reject(err);
      else resolve({ channels, truncated });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          finish(
            new GatewayError(
              "remote-server-timeout",
              `${server} did not send its channel list: no answer to LIST within ${idleMs / 1000} seconds.`,
            ),
          ),
        idleMs,
      );
    };
    const onAbort = () =>
      finish(new GatewayError("remote-server-not-found", `${server} closed the connection during LIST.`));
    const line = (m: IrcMessage) => {
      const numeric = m.command;
      if (numeric === "322") {
        arm();
        const channel = listedChannel(m.params);
        if (!channel) return;
        if (channels.length < max) channels.push(channel);
        else truncated = true;
      } else if (numeric === "323") finish(null);
      else if (
        LIST_REFUSALS.has(numeric) ||
        (/^[45]\d\d$/.test(numeric) && m.params[1]?.toUpperCase() === "LIST")
      )
        finish(
          new GatewayError(
            "service-unavailable",
            `${server} refused to list its channels: ${mircToText(m.params[m.params.length - 1] ?? "no reason given")}`,
            { type: "wait" },
          ),
        );
    };
    // Only numerics (and our own NICK and user MODE) reach a reply listener (see handlers.ts).
    stop = session.listenReplies({ line, closed: onAbort });
    arm();
    session
      .send("LIST")
      .catch((err: unknown) =>
        finish(
          err instanceof GatewayError
            ? err
            : new GatewayError("recipient-unavailable", `The connection to ${server} closed before LIST.`),
        ),
      );
  });
}

export interface ChannelListsOptions {
  redis: RedisClient;
  key: KeyBuilder;
  log: Logger;
  cacheSeconds: number;
  timeoutSeconds: number;
  /** The user's connection to the server, ready (opened as a join would); released with `release`. */
  session(user: string, server: string): Promise<IrcSession>;
  release(session: IrcSession): void;
  /** Counts where a list came from: a LIST sent ("irc") or the copy in Redis ("cache"). */
  counted(source: "irc" | "cache"): void;
}

/** A list read from Redis, kept with the time it was made (which names the copy) and its disco items. */
interface Remembered {
  at: string;
  list: ChannelList;
  items?: DiscoItem[];
}

/**
 * The channel lists of the IRC servers, from Redis or a LIST. The copy in Redis is a hash (`v`, `at`,
 * `truncated`, `channels`) so that a page request reads only `at` when this process holds that same copy in
 * memory: a big network's list (megabytes) is read and turned into items once per copy, not once per page.
 */
export class ChannelLists {
  /** LISTs running in this process, by server: at most one per server (bounded by the allowed servers). */
  private readonly running = new Map<string, Promise<ChannelList>>();
  /** The last copy read, by server: one entry per allowed server, replaced when the copy changes. */
  private readonly remembered = new Map<string, Remembered>();

  constructor(private readonly opts: ChannelListsOptions) {}

  /** The server's channels as disco items (see channelItems), most users first. */
  async items(user: string, server: string, jidOf: (channel: string) => string | null): Promise<DiscoItem[]> {
    const list = await this.list(user, server);
    const memo = this.remembered.get(server);
    if (memo?.list !== list) return channelItems(list, jidOf);
    memo.items ??= channelItems(list, jidOf);
    return memo.items;
  }

  /** The server's channels, most users first; a LIST on the user's connection when there is no fresh copy. */
  async list(user: string, server: string): Promise<ChannelList> {
    const cached = await this.cached(server);
    if (cached) {
      this.opts.counted("cache");
      return cached;
    }
    const running = this.running.get(server);
    if (running) return running;
    const fresh = this.fetch(user, server).finally(() => this.running.delete(server));
    this.running.set(server, fresh);
    return fresh;
  }

  private async fetch(user: string, server: string): Promise<ChannelList> {
    const { redis, key } = this.opts;
    const lock = key("channel-list-lock", server);
    const token = randomUUID();
    const deadline = Date.now() + LIST_LOCK_SECONDS * 1000;
    // Another instance listing the same server: wait for its copy (or for its lock to lapse).
    while ((await redis.set(lock, token, "EX", LIST_LOCK_SECONDS, "NX")) !== "OK") {
      const copy = await this.cached(server);
      if (copy) {
        this.opts.counted("cache");
        return copy;
      }
      if (Date.now() > deadline)
        throw new GatewayError(
          "remote-server-timeout",
          `The channel list of ${server} is being fetched and did not arrive; try again later.`,
        );
      await sleep(LIST_POLL_MS);
    }
    try {
      const session = await this.opts.session(user, server);
      let list: ChannelList;
      try {
        this.opts.counted("irc");
        list = await collectChannelList(session, this.opts.timeoutSeconds * 1000);
      } finally {
        this.opts.release(session);
      }
      sortChannels(list.channels);
      if (list.truncated)
        this.opts.log.warn({ server, kept: list.channels.length }, "IRC channel list cut short");
      await this.store(server, list);
      return list;
    } finally {
      // Only our own lock: one that lapsed and was taken by another instance stays theirs.
      if ((await redis.get(lock).catch(() => null)) === token) await redis.del(lock).catch(() => undefined);
    }
  }

  private async cached(server: string): Promise<ChannelList | null> {
    const { redis, key } = this.opts;
    const at = await redis.hget(key("channel-list", server), "at");
    if (at === null) return null;
    const memo = this.remembered.get(server);
    if (memo?.at === at) return memo.list;
    const [version, truncated, raw] = await redis.hmget(
      key("channel-list", server),
      "v",
      "truncated",
      "channels",
    );
    if (version !== String(STORED_VERSION) || raw === null || raw === undefined) return null;
    try {
      const stored = JSON.parse(raw) as unknown;
      if (!Array.isArray(stored)) return null;
      const channels = (stored as unknown[]).flatMap((c) =>
        Array.isArray(c) && typeof c[0] === "string" && typeof c[1] === "number" && typeof c[2] === "string"
          ? [{ name: c[0], users: c[1], topic: c[2] }]
          : [],
      );
      const list = { channels, truncated: truncated === "1" };
      this.remembered.set(server, { at, list });
      return list;
    } catch (err) {
      this.opts.log.warn({ err, server }, "stored IRC channel list unreadable; listing again");
      return null;
    }
  }

  private async store(server: string, list: ChannelList): Promise<void> {
    const name = this.opts.key("channel-list", server);
    await this.opts.redis
      .multi()
      .del(name)
      .hset(name, {
        v: String(STORED_VERSION),
        at: `${new Date().toISOString()} ${randomUUID()}`,
        truncated: list.truncated ? "1" : "0",
        channels: JSON.stringify(list.channels.map((c) => [c.name, c.users, c.topic])),
      })
      .expire(name, this.opts.cacheSeconds)
      .exec();
  }
}
