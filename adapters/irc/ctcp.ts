/**
 * CTCP queries to the gateway's connections (ircdocs "CTCP"): VERSION and PING are answered, never more
 * than the network can bear. A query sent to a channel reaches every bridged user in it, and answering
 * from each connection would turn one line into as many NOTICEs as there are users (1,000 users → 1,000
 * replies to whoever asked): a channel query is answered once per channel by whichever connection claims
 * it first, on this instance and across instances (a short-lived Redis key). Each connection also answers
 * at most CTCP_REPLY_BURST queries at once, then one every CTCP_REPLY_INTERVAL_MS; others get no answer.
 */
import type { Logger } from "../../src/log.js";
import { parseCtcp } from "./format.js";

/** CTCP replies one connection sends at once. */
export const CTCP_REPLY_BURST = 3;
/** Then one CTCP reply per this many milliseconds per connection. */
export const CTCP_REPLY_INTERVAL_MS = 2_000;
/** A channel's CTCP queries within this window after an answered one get no other answer. */
export const CHANNEL_CTCP_WINDOW_MS = 2_000;
/** Channels remembered in memory as just answered (each only for CHANNEL_CTCP_WINDOW_MS). */
export const MAX_CHANNEL_CLAIMS = 10_000;
/** What the gateway says it is to CTCP VERSION. */
export const CTCP_VERSION = "xmpp-gateway";

/** The CTCP reply (without the \x01 markers) to a query's text, or null when the gateway does not answer it. */
export function ctcpReply(query: string): string | null {
  const ctcp = parseCtcp(`\x01${query}\x01`);
  if (ctcp?.command === "VERSION") return `VERSION ${CTCP_VERSION}`;
  // The library's check: a PING carries the asker's token to send back.
  if (ctcp?.command === "PING" && ctcp.params !== "") return `PING ${ctcp.params}`;
  return null;
}

/** A token bucket that refuses instead of waiting: for replies that are better dropped than delayed. */
export class ReplyLimit {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst = CTCP_REPLY_BURST,
    private readonly intervalMs = CTCP_REPLY_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token if there is one. */
  tryTake(): boolean {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.intervalMs);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** What answering needs of a connection: a channel query's claim (see ChannelCtcpClaims) and a NOTICE. */
export interface CtcpLink {
  claimChannel(channel: string): Promise<boolean>;
  notice(to: string, text: string): Promise<void>;
}

/** One connection's CTCP answers: a channel query once per channel, all within the connection's reply limit. */
export class CtcpAnswers {
  private readonly replies = new ReplyLimit();

  constructor(
    private readonly link: CtcpLink,
    private readonly log: Logger,
    private readonly where: { jid: string; server: string },
  ) {}

  /** Answers `to`; a reply that is not sent is only logged at debug (CTCP answers are best effort). */
  answer(to: string, reply: string, channel: string | undefined): void {
    this.send(to, reply, channel).catch((err: unknown) =>
      this.log.debug({ err, server: this.where.server }, "CTCP reply not sent"),
    );
  }

  private async send(to: string, reply: string, channel: string | undefined): Promise<void> {
    if (channel !== undefined && !(await this.link.claimChannel(channel))) return;
    if (!this.replies.tryTake()) {
      this.log.debug({ ...this.where, from: to }, "CTCP query not answered: reply limit reached");
      return;
    }
    await this.link.notice(to, `\x01${reply}\x01`);
  }
}

/**
 * Who answers a channel's CTCP query: the first connection to claim the channel within the window. The
 * memory answers for this instance (the other connections in the channel read the same line at the same
 * moment); `remote` (SET NX with expiry) makes the instances agree.
 */
export class ChannelCtcpClaims {
  /** server\0channel → when the claim ends (ms). */
  private readonly until = new Map<string, number>();

  constructor(
    private readonly remote: ((server: string, channel: string, ms: number) => Promise<boolean>) | undefined,
    private readonly windowMs = CHANNEL_CTCP_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** True for the one caller that should answer a query just seen in `channel`. */
  async claim(server: string, channel: string): Promise<boolean> {
    const [srv, chan] = [server.toLowerCase(), channel.toLowerCase()];
    const key = `${srv}\0${chan}`;
    const now = this.now();
    if ((this.until.get(key) ?? 0) > now) return false;
    this.until.delete(key);
    this.until.set(key, now + this.windowMs);
    this.prune(now);
    if (!this.remote) return true;
    try {
      return await this.remote(srv, chan, this.windowMs);
    } catch {
      // Redis unreachable: rather no answer than one per user.
      return false;
    }
  }

  private prune(now: number): void {
    if (this.until.size <= MAX_CHANNEL_CLAIMS) return;
    for (const [key, end] of this.until) if (end <= now) this.until.delete(key);
    // Oldest first (insertion order) until within bounds.
    for (const key of this.until.keys()) {
      if (this.until.size <= MAX_CHANNEL_CLAIMS) break;
      this.until.delete(key);
    }
  }
}
