/**
 * IRC connections: one per (bare JID, IRC server), shared by all of the user's resources (biboumi's model),
 * opened on the first join or message and closed with QUIT a grace period after the user left everything.
 * A connection lost while the user is in channels is redialed with backoff and jitter, and its channels
 * joined again, while the user's rooms are kept.
 */
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { serverPolicy, type IrcConfig } from "./config.js";
import { backoffMs, Stagger } from "./reconnect.js";
import { IrcSession, type Member, type SessionSettings } from "./session.js";

export { IrcSession, QUIT_MESSAGE, type Member, type SessionSettings } from "./session.js";

/**
 * Most IRC connections one gateway process holds in all (DESIGN: about 1,000 per machine; 10,000 measured in
 * bench/RESULTS.md at about 40 KiB each); beyond it a new
 * user gets resource-constraint rather than the process running out of memory or file descriptors.
 */
export const MAX_CONNECTIONS_TOTAL = 10_000;

export interface ConnectionsOptions {
  config: IrcConfig;
  /** The adapter's logger (known only once the adapter started). */
  log(): Logger;
  /** Called once for each new session, to attach the adapter's event handlers before it connects. */
  attach(session: IrcSession): void;
  /** A lost connection's redial is starting (for metrics). */
  redialing?(session: IrcSession): void;
  /** The outage lasted: tell the user. */
  outage?(session: IrcSession): void;
  /** The redials failed for good: the user is out of the session's channels. */
  gaveUp?(session: IrcSession): void;
  /** The user's connection to the server is gone for good (not being redialed). */
  released?(user: string, server: string): void;
}

/** What a redial carries over from the session it replaces. */
interface Carried {
  user: string;
  server: string;
  settings: SessionSettings;
  channels: Map<string, Map<string, Member>>;
  attempt: number;
  lostAt: number | undefined;
  outageNoticeSent: boolean;
  before: IrcSession["before"];
}

/** The bounded map of live sessions, keyed by (bare JID, server). */
export class IrcConnections {
  private readonly sessions = new Map<string, IrcSession>();
  private readonly stagger = new Stagger();

  constructor(private readonly opts: ConnectionsOptions) {}

  private static key(user: string, server: string): string {
    return `${user}\n${server}`;
  }

  get(user: string, server: string): IrcSession | undefined {
    return this.sessions.get(IrcConnections.key(user, server));
  }

  private checkCapacity(server: string): void {
    if (this.sessions.size >= MAX_CONNECTIONS_TOTAL)
      throw new GatewayError(
        "resource-constraint",
        "The IRC gateway holds as many connections as it can; try again later.",
      );
    const onServer = [...this.sessions.values()].filter((s) => s.server === server).length;
    if (onServer >= this.opts.config.maxConnectionsPerServer)
      throw new GatewayError(
        "resource-constraint",
        `The gateway already has ${onServer} connections to ${server}, its limit; try again later.`,
      );
  }

  /** The user's session on `server`, opened with these settings if there is none yet; await its `ready`. */
  open(user: string, server: string, settings: SessionSettings | string): IrcSession {
    const existing = this.get(user, server);
    if (existing) {
      this.hold(existing);
      return existing;
    }
    this.checkCapacity(server);
    const full = typeof settings === "string" ? this.defaults(server, settings) : settings;
    const session = new IrcSession(user, server, full, this.opts.config, this.opts.log());
    this.sessions.set(IrcConnections.key(user, server), session);
    session.ready.catch(() => this.drop(session));
    this.opts.attach(session);
    session.client.connect();
    return session;
  }

  /** The config's settings for a server, with this nick. */
  defaults(server: string, nick: string): SessionSettings {
    const c = this.opts.config;
    const policy = serverPolicy(c, server);
    return {
      nick,
      fallbackCharset: c.addresses[server]?.fallbackCharset ?? c.fallbackCharset,
      floodBurst: policy.floodBurst,
      lineDelayMs: policy.lineDelayMs,
      maxQueuedLines: policy.maxQueuedLines,
      services: policy.services,
    };
  }

  /**
   * Opens a session that joins `channels` again once registered, keeping the user's rooms: after a gateway
   * restart (from the record in Redis), starting at the server's next stagger slot.
   */
  restore(
    user: string,
    server: string,
    settings: SessionSettings,
    channels: Map<string, Map<string, Member>>,
  ) {
    if (this.get(user, server)) return;
    this.checkCapacity(server);
    this.redial({
      user,
      server,
      settings,
      channels,
      attempt: 0,
      lostAt: undefined,
      outageNoticeSent: false,
      before: undefined,
    });
  }

  /**
   * The connection is gone (server closed it, network error, stall) or a redial failed. With channels still
   * joined, it is redialed after a backoff; after the last attempt the user is told they left the rooms.
   */
  lost(old: IrcSession): void {
    const key = IrcConnections.key(old.user, old.server);
    if (this.sessions.get(key) !== old || old.closed) return;
    const log = this.opts.log();
    // A session that had registered starts counting again; a failed redial counts one more.
    const attempt = old.registered ? 0 : old.attempt + 1;
    const before = old.registered ? { nick: old.nick, occupants: old.occupants() } : old.before;
    old.quit();
    if (old.channels.size === 0) {
      this.sessions.delete(key);
      this.opts.released?.(old.user, old.server);
      return;
    }
    if (attempt >= this.opts.config.reconnectMaxAttempts) {
      log.warn({ jid: old.user, server: old.server, attempt }, "IRC server unreachable, giving up");
      this.sessions.delete(key);
      this.opts.gaveUp?.(old);
      this.opts.released?.(old.user, old.server);
      return;
    }
    this.redial({
      user: old.user,
      server: old.server,
      settings: { ...old.settings, nick: before?.nick ?? old.settings.nick },
      channels: old.channels,
      attempt,
      lostAt: old.lostAt ?? Date.now(),
      outageNoticeSent: old.outageNoticeSent,
      before,
    });
  }

  private redial(c: Carried): void {
    const config = this.opts.config;
    const next = new IrcSession(c.user, c.server, c.settings, config, this.opts.log(), { restoring: true });
    for (const [channel, members] of c.channels) next.channels.set(channel, members);
    next.attempt = c.attempt;
    next.lostAt = c.lostAt;
    next.outageNoticeSent = c.outageNoticeSent;
    next.before = c.before;
    this.sessions.set(IrcConnections.key(c.user, c.server), next);
    this.opts.attach(next);
    // Rejoin first: this runs before any join() awaiting the same `ready`, so those see their JOIN sent.
    next.ready.then(
      () => {
        for (const channel of next.channels.keys()) {
          next.requested.add(channel);
          void next.send("JOIN", channel).catch(() => undefined);
          void next.send("MODE", channel).catch(() => undefined);
        }
      },
      () => this.lost(next),
    );
    const wait = this.stagger.delay(
      c.server,
      c.lostAt === undefined ? 0 : backoffMs(c.attempt, config.reconnectMaxSeconds),
    );
    this.opts
      .log()
      .info({ jid: c.user, server: c.server, attempt: c.attempt, waitMs: wait }, "IRC connection redial");
    next.connectTimer = setTimeout(() => {
      if (next.closed) return;
      this.opts.redialing?.(next);
      next.client.connect();
    }, wait);
    next.connectTimer.unref();
    if (c.lostAt !== undefined && !c.outageNoticeSent) {
      const noticeIn = c.lostAt + config.reconnectNoticeSeconds * 1000 - Date.now();
      setTimeout(
        () => {
          const current = this.get(c.user, c.server);
          if (!current || current.closed || current.registered || current.outageNoticeSent) return;
          current.outageNoticeSent = true;
          this.opts.outage?.(current);
        },
        Math.max(0, noticeIn),
      ).unref();
    }
  }

  /** Keeps a session open: cancels a pending QUIT. */
  hold(session: IrcSession): void {
    clearTimeout(session.graceTimer);
    session.graceTimer = undefined;
  }

  /** The user left something: QUIT after the grace period if no channel of this session is joined. */
  release(session: IrcSession): void {
    if (session.channels.size > 0 || session.closed) return;
    clearTimeout(session.graceTimer);
    const arm = () => {
      session.graceTimer = setTimeout(() => {
        if (session.channels.size > 0 || session.closed) return;
        // Lines still waiting for flood control go out first: a QUIT now would lose them.
        if (session.queuedLines > 0) return arm();
        this.opts
          .log()
          .info({ jid: session.user, server: session.server }, "IRC connection closed after grace");
        this.drop(session);
      }, this.opts.config.graceSeconds * 1000);
      session.graceTimer.unref();
    };
    arm();
  }

  /** Forgets the session and QUITs it. */
  drop(session: IrcSession, message?: string): void {
    const key = IrcConnections.key(session.user, session.server);
    if (this.sessions.get(key) === session) {
      this.sessions.delete(key);
      this.opts.released?.(session.user, session.server);
    }
    session.quit(message);
  }

  /** Every live session. */
  all(): IrcSession[] {
    return [...this.sessions.values()];
  }

  closeAll(message: string): void {
    for (const s of this.all()) this.drop(s, message);
  }
}
