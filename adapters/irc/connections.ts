/**
 * The owner of every IRC connection's life: one per (bare JID, IRC server), shared by all of the user's
 * resources (biboumi's model), opened on the first join or message under a lease in Redis (lease.ts: one
 * instance holds a user's connection), renewed while open, closed with QUIT a grace period after the user
 * left everything. A connection lost while the user is in channels is redialed with backoff, jitter and a
 * per-server stagger (reconnect.ts), and its channels joined again, while the user's rooms are kept. After a
 * gateway restart the recorded channels are rejoined the same way. Nothing else opens, redials or closes
 * a connection; sessions (session.ts) only report that theirs was lost.
 */
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { serverPolicy, type IrcConfig } from "./config.js";
import { LEASE_RENEW_MS, LEASE_SECONDS, type Leases } from "./lease.js";
import type { Emitted } from "./store-queue.js";
import { backoffMs, Stagger } from "./reconnect.js";
import {
  IrcSession,
  type Carried,
  type Member,
  type SessionOutput,
  type SessionSettings,
} from "./session.js";

export { IrcSession, QUIT_MESSAGE, type Member, type SessionSettings } from "./session.js";

/**
 * Most IRC connections one gateway process holds in all (DESIGN: about 1,000 per machine; 10,000 measured in
 * bench/RESULTS.md); beyond it a new user gets resource-constraint rather than the process running out of
 * memory or file descriptors.
 */
export const MAX_CONNECTIONS_TOTAL = 10_000;

export interface ConnectionsOptions {
  config: IrcConfig;
  /** The adapter's logger (known only once the adapter started). */
  log(): Logger;
  /** Where the sessions' events, CTCP claims and nick JIDs come from and go to (see SessionOutput). */
  deliver(session: IrcSession, events: readonly Emitted[]): void;
  /** Channel history (mam.ts): none when absent. */
  archive?: SessionOutput["archive"];
  joinHistory?: SessionOutput["joinHistory"];
  channelsChanged?(session: IrcSession): void;
  claimChannelCtcp?(server: string, channel: string): Promise<boolean>;
  nickJid?(nick: string, server: string): string | null;
  /** The JID the server itself speaks from (its MOTD, notices and console replies). */
  serverJid?(server: string): string;
  /** A new session was made (before it connects). */
  opened?(session: IrcSession): void;
  /** A lost connection's redial is starting (for metrics). */
  redialing?(session: IrcSession): void;
  /** The outage lasted: tell the user. */
  outage?(session: IrcSession): void;
  /** The redials failed for good: the user is out of the session's channels. */
  gaveUp?(session: IrcSession): void;
}

/** What the owner keeps of one connection's life. */
interface Life {
  graceTimer?: NodeJS.Timeout;
  connectTimer?: NodeJS.Timeout;
  /** Failed redials so far. */
  attempt: number;
  /** When the connection was lost (ms since epoch); undefined while all is well. */
  lostAt?: number;
}

/** The bounded map of live sessions, keyed by (bare JID, server). */
export class IrcConnections {
  private readonly sessions = new Map<string, IrcSession>();
  private readonly lives = new WeakMap<IrcSession, Life>();
  private readonly stagger = new Stagger();
  private readonly output: SessionOutput;
  private leases: Leases | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: ConnectionsOptions) {
    this.output = {
      deliver: (session, events) => opts.deliver(session, events),
      archive: (session, channel, line) =>
        opts.archive?.(session, channel, line) ?? Promise.resolve(undefined),
      joinHistory: (session, events) => opts.joinHistory?.(session, events) ?? Promise.resolve(events),
      channelsChanged: (session) => opts.channelsChanged?.(session),
      idle: (session) => this.release(session),
      lost: (session) => this.lost(session),
      claimChannelCtcp: (server, channel) =>
        opts.claimChannelCtcp?.(server, channel) ?? Promise.resolve(true),
      nickJid: (nick, server) => opts.nickJid?.(nick, server) ?? null,
      serverJid: (server) => opts.serverJid?.(server) ?? server,
    };
  }

  private static key(user: string, server: string): string {
    return `${user}\n${server}`;
  }

  private life(session: IrcSession): Life {
    let life = this.lives.get(session);
    if (!life) {
      life = { attempt: 0 };
      this.lives.set(session, life);
    }
    return life;
  }

  get(user: string, server: string): IrcSession | undefined {
    return this.sessions.get(IrcConnections.key(user, server));
  }

  /** Every live session. */
  all(): IrcSession[] {
    return [...this.sessions.values()];
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

  /** Holds connections under leases from now on, renewing them; one taken over elsewhere is closed here. */
  start(leases: Leases): void {
    this.leases = leases;
    this.renewTimer = setInterval(() => void this.renewLeases(), LEASE_RENEW_MS);
    this.renewTimer.unref();
  }

  /**
   * The user's session on `server`: the open one, or a new one under this instance's lease with the
   * settings `settings()` gives; await its `ready`.
   */
  async connect(user: string, server: string, settings: () => Promise<SessionSettings>): Promise<IrcSession> {
    const existing = this.get(user, server);
    if (existing) return this.open(user, server, existing.settings);
    const full = await settings();
    if (this.leases && !(await this.leases.acquire(user, server)))
      throw new GatewayError(
        "resource-constraint",
        `Another instance of the gateway holds your connection to ${server}; try again in ${LEASE_SECONDS} seconds.`,
      );
    return this.open(user, server, full);
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
    const session = new IrcSession(user, server, full, this.opts.config, this.opts.log(), this.output);
    this.sessions.set(IrcConnections.key(user, server), session);
    session.ready.catch(() => this.drop(session));
    this.opts.opened?.(session);
    session.connect();
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
      mentionsOnly: new Set(),
    };
  }

  /**
   * After a gateway restart: opens a session that joins `channels` again once registered, keeping the
   * user's rooms, at the server's next stagger slot, once this instance holds the lease (another instance,
   * or a crashed one, may hold it: tried again once that lease could have expired).
   */
  async restore(
    user: string,
    server: string,
    settings: () => Promise<SessionSettings>,
    channels: Map<string, Map<string, Member>>,
  ): Promise<void> {
    if (this.stopped || this.get(user, server)) return;
    if (this.leases && !(await this.leases.acquire(user, server))) {
      setTimeout(
        () =>
          void this.restore(user, server, settings, channels).catch((err: unknown) =>
            this.opts.log().warn({ err, jid: user, server }, "IRC channels not rejoined"),
          ),
        LEASE_SECONDS * 1000,
      ).unref();
      return;
    }
    const full = await settings();
    if (this.get(user, server)) return;
    this.checkCapacity(server);
    this.redial(user, server, full, { channels, before: undefined, outageNoticeSent: false }, { attempt: 0 });
  }

  /**
   * The connection is gone (server closed it, network error, stall) or a redial failed. With channels still
   * joined, it is redialed after a backoff; after the last attempt the user is told they left the rooms.
   */
  private lost(old: IrcSession): void {
    const key = IrcConnections.key(old.user, old.server);
    if (this.sessions.get(key) !== old || old.closed) return;
    const log = this.opts.log();
    const was = this.life(old);
    // A session that had registered starts counting again; a failed redial counts one more.
    const attempt = old.registered ? 0 : was.attempt + 1;
    const before = old.registered ? { nick: old.nick, occupants: old.occupants() } : old.before;
    const channels = new Map([...old.channels].map(([c, m]) => [c, new Map(m)]));
    this.close(old);
    if (channels.size === 0) {
      this.forget(old);
      return;
    }
    if (attempt >= this.opts.config.reconnectMaxAttempts) {
      log.warn({ jid: old.user, server: old.server, attempt }, "IRC server unreachable, giving up");
      this.forget(old);
      this.opts.gaveUp?.(old);
      return;
    }
    this.redial(
      old.user,
      old.server,
      { ...old.settings, nick: before?.nick ?? old.settings.nick },
      { channels, before, outageNoticeSent: old.outageNoticeSent },
      { attempt, lostAt: was.lostAt ?? Date.now() },
    );
  }

  private redial(
    user: string,
    server: string,
    settings: SessionSettings,
    carried: Carried,
    life: Life,
  ): void {
    const config = this.opts.config;
    const next = new IrcSession(user, server, settings, config, this.opts.log(), this.output, carried);
    this.lives.set(next, life);
    this.sessions.set(IrcConnections.key(user, server), next);
    this.opts.opened?.(next);
    next.ready.catch(() => this.lost(next));
    const wait = this.stagger.delay(
      server,
      life.lostAt === undefined ? 0 : backoffMs(life.attempt, config.reconnectMaxSeconds),
    );
    this.opts.log().info({ jid: user, server, attempt: life.attempt, waitMs: wait }, "IRC connection redial");
    life.connectTimer = setTimeout(() => {
      if (next.closed) return;
      this.opts.redialing?.(next);
      next.connect();
    }, wait);
    life.connectTimer.unref();
    if (life.lostAt !== undefined && !carried.outageNoticeSent) {
      const noticeIn = life.lostAt + config.reconnectNoticeSeconds * 1000 - Date.now();
      setTimeout(
        () => {
          const current = this.get(user, server);
          if (!current || current.closed || current.registered || current.outageNoticeSent) return;
          current.markOutageNoticed();
          this.opts.outage?.(current);
        },
        Math.max(0, noticeIn),
      ).unref();
    }
  }

  /** Keeps a session open: cancels a pending QUIT. */
  hold(session: IrcSession): void {
    const life = this.life(session);
    clearTimeout(life.graceTimer);
    life.graceTimer = undefined;
  }

  /** The user left something: QUIT after the grace period if no channel of this session is joined. */
  release(session: IrcSession): void {
    if (session.channels.size > 0 || session.closed) return;
    const life = this.life(session);
    clearTimeout(life.graceTimer);
    const arm = () => {
      life.graceTimer = setTimeout(() => {
        if (session.channels.size > 0 || session.closed) return;
        // Lines still waiting for flood control go out first: a QUIT now would lose them.
        if (session.queuedLines > 0) return arm();
        this.opts
          .log()
          .info({ jid: session.user, server: session.server }, "IRC connection closed after grace");
        this.drop(session);
      }, this.opts.config.graceSeconds * 1000);
      life.graceTimer.unref();
    };
    arm();
  }

  /** Forgets the session, QUITs it and releases its lease. */
  drop(session: IrcSession, message?: string): void {
    this.forget(session);
    this.close(session, message);
  }

  closeAll(message: string): void {
    for (const s of this.all()) this.drop(s, message);
  }

  /** Graceful stop: every connection QUITs, and its lease is released at once so another instance takes over. */
  async stop(message: string): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewTimer);
    const sessions = this.all();
    this.closeAll(message);
    const leases = this.leases;
    if (leases)
      await Promise.all(sessions.map((s) => leases.release(s.user, s.server).catch(() => undefined)));
  }

  private close(session: IrcSession, message?: string): void {
    const life = this.life(session);
    clearTimeout(life.graceTimer);
    clearTimeout(life.connectTimer);
    session.quit(message);
  }

  /** Out of the table, and its lease released (not while stopping: stop() releases them all). */
  private forget(session: IrcSession): void {
    const key = IrcConnections.key(session.user, session.server);
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    if (!this.stopped) void this.leases?.release(session.user, session.server).catch(() => undefined);
  }

  /** Renews the lease of every connection; one taken over by another instance is closed here. */
  private async renewLeases(): Promise<void> {
    for (const session of this.all()) {
      const held = await this.leases?.acquire(session.user, session.server).catch(() => true);
      if (held === false) {
        this.opts.log().warn({ jid: session.user, server: session.server }, "IRC connection taken over");
        this.drop(session, "Connection moved to another gateway instance");
      }
    }
  }
}
