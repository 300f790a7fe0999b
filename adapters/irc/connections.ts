/**
 * IRC connections: one per (bare JID, IRC server), shared by all of the user's resources (biboumi's model),
 * opened on the first join or message and closed with QUIT a grace period after the user left everything.
 */
import { Client, type Message } from "matrix-org-irc";
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { addressOf, type IrcConfig } from "./config.js";
import { decodeIrcLines } from "./split.js";

/**
 * Most IRC connections one gateway process holds in all (DESIGN: about 1,000 per machine); beyond it a new
 * user gets resource-constraint rather than the process running out of memory or file descriptors.
 */
export const MAX_CONNECTIONS_TOTAL = 2000;
/** QUIT text the IRC side sees when the gateway closes a connection. */
export const QUIT_MESSAGE = "Left all channels";

/** A user's resource in a channel: its full JID and the room JID it joined as (the case it typed). */
export interface Member {
  roomJid: string;
  /** The MUC nick it asked for. */
  requestedNick: string;
}

export class IrcSession {
  readonly client: Client;
  /** Resolves once the server registered the nick (RPL_WELCOME); rejects with a GatewayError. */
  readonly ready: Promise<void>;
  /** Lowercased channel → full JID of each resource joined → how it joined. */
  readonly channels = new Map<string, Map<string, Member>>();
  /** Channels whose NAMES list arrived: their occupants are known and shown. */
  readonly synced = new Set<string>();
  /** Channels a JOIN was sent for. */
  readonly requested = new Set<string>();
  /** Deliveries to the user, chained so they reach XMPP in the order IRC sent them (occupants, then self). */
  chain: Promise<unknown> = Promise.resolve();
  registered = false;
  closed = false;
  graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly user: string,
    readonly server: string,
    nick: string,
    config: IrcConfig,
    log: Logger,
  ) {
    const address = addressOf(config, server);
    this.client = new Client(address.host, nick, {
      port: address.port,
      secure: address.tls,
      userName: config.userName,
      realName: config.realName,
      autoConnect: false,
      autoRejoin: false,
      // No silent library reconnects: a lost connection is reported to the user (see "lost" in index.ts).
      retryCount: 0,
      floodProtection: config.lineDelayMs > 0,
      floodProtectionDelay: config.lineDelayMs,
      stripColors: false,
      connectionTimeout: config.connectTimeoutSeconds * 1000,
    });
    // Each line is UTF-8 or else the fallback charset, decided line by line (the library would decide per chunk).
    this.client.convertEncoding = (bytes: Buffer) => decodeIrcLines(bytes, config.fallbackCharset);
    // matrix-org-irc handles server lines inside its socket 'data' handler and rethrows what its own
    // handlers throw (e.g. a 001 without text), which would end the whole gateway process: a line that
    // breaks the library is logged and skipped instead, and the other lines and users go on.
    // The typed emitter's overloads cannot be spelt generically: call it through a plain signature.
    const emit = this.client.emit.bind(this.client) as (event: string, ...args: unknown[]) => boolean;
    this.client.emit = (event: string, ...args: unknown[]) => {
      try {
        return emit(event, ...args);
      } catch (err) {
        log.warn({ err, server, event }, "IRC line the client library could not handle, skipped");
        return true;
      }
    };
    // Every 'error' needs a listener, or EventEmitter throws; numerics are handled by the adapter.
    this.client.on("error", (m: Message) => log.debug({ server, command: m.command }, "IRC error reply"));
    this.ready = new Promise<void>((resolve, reject) => {
      const fail = (err: GatewayError) => {
        if (this.registered) return;
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(
        () =>
          fail(
            new GatewayError(
              "remote-server-timeout",
              `The IRC server ${server} did not answer within ${config.connectTimeoutSeconds} seconds.`,
            ),
          ),
        config.connectTimeoutSeconds * 1000,
      );
      this.client.once("registered", () => {
        clearTimeout(timer);
        this.registered = true;
        resolve();
      });
      this.client.on("netError", (err: Error) =>
        fail(
          new GatewayError(
            "remote-server-not-found",
            `Cannot reach the IRC server ${server} (${address.host} port ${address.port}): ${err.message}.`,
          ),
        ),
      );
      this.client.on("abort", () =>
        fail(new GatewayError("remote-server-not-found", `The IRC server ${server} closed the connection.`)),
      );
      this.client.on("raw", (m: Message) => {
        if (m.command === "err_nicknameinuse")
          fail(
            new GatewayError(
              "conflict",
              `The nick ${nick} is already in use on ${server}; join again with another nick.`,
            ),
          );
        else if (m.command === "err_erroneusnickname")
          fail(new GatewayError("jid-malformed", `${server} does not accept ${nick} as a nick.`));
      });
    });
    // Whoever opened the session awaits `ready`; this only keeps a failure from being unhandled.
    this.ready.catch(() => undefined);
  }

  /** The channel is left (or was never entered): no resource is in it any more. */
  forgetChannel(channel: string): void {
    const key = channel.toLowerCase();
    this.channels.delete(key);
    this.synced.delete(key);
    this.requested.delete(key);
  }

  get nick(): string {
    return this.client.nick;
  }

  /** Bytes of `nick!user@host` the server puts in front of our lines when relaying them. */
  prefixBytes(): number {
    // RPL_WELCOME usually ends with our full mask; else assume the longest user and host (RFC 2812 §2.3.1).
    const mask = this.client.hostMask.includes("!")
      ? this.client.hostMask
      : `${this.nick}!~xmpp@${"h".repeat(63)}`;
    return Buffer.byteLength(mask, "utf8");
  }

  /** Sends QUIT (when connected) and closes the socket; the session is unusable afterwards. */
  quit(message = QUIT_MESSAGE): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.graceTimer);
    try {
      this.client.disconnect(message);
    } catch {
      // Never connected: nothing to close.
    }
  }
}

export interface ConnectionsOptions {
  config: IrcConfig;
  /** The adapter's logger (known only once the adapter started). */
  log(): Logger;
  /** Called once for each new session, to attach the adapter's event handlers before it connects. */
  attach(session: IrcSession): void;
}

/** The bounded map of live sessions, keyed by (bare JID, server). */
export class IrcConnections {
  private readonly sessions = new Map<string, IrcSession>();

  constructor(private readonly opts: ConnectionsOptions) {}

  private static key(user: string, server: string): string {
    return `${user}\n${server}`;
  }

  get(user: string, server: string): IrcSession | undefined {
    return this.sessions.get(IrcConnections.key(user, server));
  }

  /** The user's session on `server`, opened with `nick` if there is none yet; await its `ready`. */
  open(user: string, server: string, nick: string): IrcSession {
    const existing = this.get(user, server);
    if (existing) {
      this.hold(existing);
      return existing;
    }
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
    const session = new IrcSession(user, server, nick, this.opts.config, this.opts.log());
    this.sessions.set(IrcConnections.key(user, server), session);
    session.ready.catch(() => this.drop(session));
    this.opts.attach(session);
    session.client.connect();
    return session;
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
    session.graceTimer = setTimeout(() => {
      this.opts
        .log()
        .info({ jid: session.user, server: session.server }, "IRC connection closed after grace");
      this.drop(session);
    }, this.opts.config.graceSeconds * 1000);
    session.graceTimer.unref();
  }

  /** Forgets the session and QUITs it. */
  drop(session: IrcSession, message?: string): void {
    const key = IrcConnections.key(session.user, session.server);
    if (this.sessions.get(key) === session) this.sessions.delete(key);
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
