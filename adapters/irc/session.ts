/**
 * One IRC connection of one user to one server: the matrix-org-irc client, the channels the user's
 * resources are in, flood control, and what is needed to redial it after a loss (see connections.ts).
 */
import { Client, type Message } from "matrix-org-irc";
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { addressOf, type IrcConfig } from "./config.js";
import { installTagParser, parseServerLine, requestCaps } from "./ircv3.js";
import { LineReader } from "./lines.js";
import { isServices, type WhoisFacts } from "./services.js";
import { decodeIrcText } from "./split.js";
import { TokenBucket } from "./throttle.js";

/** QUIT text the IRC side sees when the gateway closes a connection. */
export const QUIT_MESSAGE = "Left all channels";

/** Own room messages awaiting the server's echo (echo-message); older ones are reflected at once. */
export const MAX_PENDING_ECHOES = 100;

/** A room message sent to IRC whose reflection waits for the server's echo of its lines. */
export interface PendingEcho {
  channel: string;
  /** Lines still to be echoed. */
  lines: number;
  reflect(): void;
  /** The server refused a line (e.g. ERR_CANNOTSENDTOCHAN): the sender gets this error instead. */
  refuse(text: string): void;
}

/** A user's resource in a channel: its full JID and the room JID it joined as (the case it typed). */
export interface Member {
  roomJid: string;
  /** The MUC nick it asked for. */
  requestedNick: string;
}

/** How one user connects to one server: the config's defaults with the user's own settings applied. */
export interface SessionSettings {
  nick: string;
  /** SASL PLAIN (IRCv3 sasl) account and password. */
  sasl?: { account: string; password: string };
  /** Sent as `PRIVMSG NickServ :IDENTIFY <password>` once the nick is registered. */
  nickservPassword?: string;
  /** TLS port instead of the configured one. */
  port?: number;
  fallbackCharset: string;
  /** Flood control: lines sent at once, then one every lineDelayMs (never below the server's floor). */
  floodBurst: number;
  lineDelayMs: number;
  /** Lines held for flood control at most; a message beyond is refused. */
  maxQueuedLines: number;
  /** Who may receive the NickServ password (see services.ts). */
  services: IrcConfig["services"];
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
  /** The server side went away (the library's "abort"): nothing more can be written on this connection. */
  private lost = false;
  graceTimer: NodeJS.Timeout | undefined;
  /** Pending start of a redial (see IrcConnections.lost). */
  connectTimer: NodeJS.Timeout | undefined;
  /**
   * Set on a session that replaces a lost one (or restores one after a gateway restart): its channels are
   * joined again once registered, and the user's rooms are kept meanwhile.
   */
  restoring = false;
  /** Failed redials so far. */
  attempt = 0;
  /** When the connection was lost (ms since epoch); undefined while all is well. */
  lostAt: number | undefined;
  /** The user was told about the outage; tell them again when it is over. */
  outageNoticeSent = false;
  /** Lowercased channels whose messages reach the user only when they mention the user's nick. */
  mentionsOnly = new Set<string>();
  /** With echo-message: own room messages, oldest first, reflected when their last line comes back. */
  readonly pendingEchoes: PendingEcho[] = [];
  /** Before the loss: the user's nick and the occupants of each channel, to show what changed meanwhile. */
  before: { nick: string; occupants: Map<string, string[]> } | undefined;
  private readonly bucket: TokenBucket;
  /** Reading from the server is paused (see pauseReading). */
  private readingPaused = false;
  /** Ends a pause that lasted its longest; set from then until the next resumeReading(). */
  private pauseTimer: NodeJS.Timeout | undefined;
  /** The last pause ran out: no new one until resumeReading() (the store caught up). */
  private pauseSpent = false;
  /** The NickServ password: sent to the services, refused (NickServ is not the services), or none to send. */
  readonly nickserv: Promise<"sent" | "untrusted" | "none">;

  constructor(
    readonly user: string,
    readonly server: string,
    readonly settings: SessionSettings,
    config: IrcConfig,
    log: Logger,
    opts: { restoring?: boolean } = {},
  ) {
    this.restoring = opts.restoring ?? false;
    const nick = settings.nick;
    const address = addressOf(config, server);
    const port = settings.port ?? address.port;
    this.bucket = new TokenBucket(settings.floodBurst, settings.lineDelayMs);
    this.client = new Client(address.host, nick, {
      port,
      secure: address.tls,
      // SASL PLAIN in matrix-org-irc authenticates as the user name: it is the account name then.
      userName: settings.sasl?.account ?? config.userName,
      realName: config.realName,
      ...(settings.sasl ? { sasl: true, password: settings.sasl.password } : {}),
      autoConnect: false,
      autoRejoin: false,
      // No silent library reconnects: a lost connection is redialed by IrcConnections, which rejoins.
      retryCount: 0,
      // Flood control is the token bucket in send(), not the library's fixed delay.
      floodProtection: false,
      stripColors: false,
      connectionTimeout: config.connectTimeoutSeconds * 1000,
    });
    installTagParser();
    requestCaps(this.client);
    // The library's own reader buffers chunks until one ends on a line break and decodes all of it per
    // chunk: under a burst that is one ever-growing "line". Here each line is cut, bounded and decoded on
    // its own (UTF-8 or else the fallback charset, line by line), then handed to the library's handlers.
    const reader = new LineReader((bytes) =>
      log.warn({ server, bytes }, "IRC server sent an over-long line; dropped"),
    );
    (this.client as unknown as { onData(chunk: Buffer | string): void }).onData = (chunk) => {
      for (const line of reader.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk))
        this.client.emit("raw", parseServerLine(decodeIrcText(line, settings.fallbackCharset)));
    };
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
      let timer: NodeJS.Timeout | undefined;
      // The timeout starts with the connection (a redial starts later than the session is made).
      this.client.once("connect", () => {
        timer = setTimeout(
          () =>
            fail(
              new GatewayError(
                "remote-server-timeout",
                `The IRC server ${server} did not answer within ${config.connectTimeoutSeconds} seconds.`,
              ),
            ),
          config.connectTimeoutSeconds * 1000,
        );
      });
      this.client.once("registered", () => {
        clearTimeout(timer);
        this.registered = true;
        resolve();
      });
      this.client.on("netError", (err: Error) =>
        fail(
          new GatewayError(
            "remote-server-not-found",
            `Cannot reach the IRC server ${server} (${address.host} port ${port}): ${err.message}.`,
          ),
        ),
      );
      this.client.on("abort", () => (this.lost = true));
      this.client.on("abort", () =>
        fail(new GatewayError("remote-server-not-found", `The IRC server ${server} closed the connection.`)),
      );
      this.client.on("sasl_error", () =>
        fail(new GatewayError("not-authorized", `${server} refused the SASL account or password.`)),
      );
      this.client.on("raw", (m: Message) => {
        // A refused CAP REQ would leave registration waiting for CAP END.
        if (m.command === "CAP" && m.args[1] === "NAK") this.client.send("CAP", "END").catch(() => undefined);
        // A redial takes another nick rather than failing (the library appends a number): 210 tells the user.
        if (m.command === "err_nicknameinuse" && !this.restoring)
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
    // NickServ identification once the nick is registered, and only to the network's services (WHOIS
    // first: anyone may hold the nick NickServ where services are down); the password is never logged.
    const password = settings.nickservPassword;
    this.nickserv =
      password === undefined
        ? Promise.resolve("none")
        : this.ready
            .then(() => this.identify(password, config.connectTimeoutSeconds * 1000))
            .catch(() => "none" as const);
  }

  /** Sends IDENTIFY to the services nick if WHOIS shows it is the configured services. */
  private async identify(password: string, timeoutMs: number): Promise<"sent" | "untrusted"> {
    const spec = this.settings.services;
    const facts = await this.whois(spec.nick, timeoutMs);
    if (!isServices(spec, facts)) return "untrusted";
    await this.send("PRIVMSG", spec.nick, `IDENTIFY ${password}`);
    return "sent";
  }

  /** What WHOIS says of `nick`: its host and server ({} for no such nick or no answer in time). */
  private whois(nick: string, timeoutMs: number): Promise<WhoisFacts> {
    const facts: WhoisFacts = {};
    const about = (m: Message) => m.args[1]?.toLowerCase() === nick.toLowerCase();
    return new Promise<WhoisFacts>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.client.removeListener("raw", onRaw);
        resolve(facts);
      };
      const onRaw = (m: Message) => {
        if (!about(m)) return;
        if (m.command === "rpl_whoisuser") facts.host = m.args[3];
        else if (m.command === "rpl_whoisserver") facts.server = m.args[2];
        else if (m.command === "rpl_endofwhois" || m.command === "err_nosuchnick") done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.client.on("raw", onRaw);
      this.send("WHOIS", nick).catch(done);
    });
  }

  /** Lines waiting for flood control. */
  get queuedLines(): number {
    return this.bucket.waiting;
  }

  /**
   * Refuses, before anything is queued, a message of `lines` lines that would take the connection's
   * flood-control queue beyond its bound: the sender learns at once, instead of the queue growing.
   */
  checkRoom(lines: number): void {
    const queued = this.bucket.waiting;
    if (queued + lines <= this.settings.maxQueuedLines) return;
    throw new GatewayError(
      "resource-constraint",
      `Too much is waiting to be sent to ${this.server}: ${queued} lines are queued by flood control ` +
        `(at most ${this.settings.maxQueuedLines}). This message was not sent; send it again once the earlier ones went out.`,
    );
  }

  /**
   * Sends one command per line (e.g. the PRIVMSG lines of one message): all queued at once, in order and
   * together, after checkRoom; resolves when the last one was written. `handOff` runs once flood control lets
   * the first line go, right before it is written (until then the message only waits in this process);
   * `progress.written` counts the lines written, for a connection that closes part-way.
   */
  async sendLines(
    command: string,
    target: string,
    lines: readonly string[],
    opts: { handOff?: () => Promise<void>; progress?: { written: number } } = {},
  ): Promise<void> {
    if (lines.some((a) => /[\r\n\0]/.test(a)) || /[\r\n\0]/.test(target))
      throw new GatewayError("bad-request", "A line break cannot be sent to IRC.");
    this.checkRoom(lines.length);
    const turns = lines.map(() => this.bucket.wait());
    for (const [i, line] of lines.entries()) {
      await turns[i];
      if (i === 0) await opts.handOff?.();
      await this.write(command, target, line);
      if (opts.progress) opts.progress.written++;
    }
  }

  /** Sends one IRC command after flood control; arguments never hold CR, LF or NUL (callers split). */
  async send(command: string, ...args: string[]): Promise<void> {
    await this.sendHandingOff(undefined, command, ...args);
  }

  /** send(), calling `handOff` once flood control lets the line go, right before it is written. */
  async sendHandingOff(
    handOff: (() => Promise<void>) | undefined,
    command: string,
    ...args: string[]
  ): Promise<void> {
    if (args.some((a) => /[\r\n\0]/.test(a)))
      throw new GatewayError("bad-request", "A line break cannot be sent to IRC.");
    await this.bucket.wait();
    await handOff?.();
    await this.write(command, ...args);
  }

  /**
   * Writes one line now. The library drops a line silently once a QUIT was asked for or the socket is gone,
   * and says it was sent: a line for a connection that is closing or lost throws instead, so its sender is
   * told (a message never reported as sent when it was not).
   */
  private async write(command: string, ...args: string[]): Promise<void> {
    if (this.closed || this.lost) throw new ConnectionClosedError(this.server);
    await this.client.send(command, ...args);
  }

  /**
   * Backpressure: stops reading from the IRC server (its lines wait in the kernel's socket buffers and the
   * server's send queue) until resumeReading(), or for `maxMs` at most. After a pause that ran out, no new
   * pause starts until resumeReading(): a store that is down, not slow, must not keep the connection silent
   * until the server drops it for unanswered PINGs (StoreQueue bounds what waits in memory then).
   * True when this call paused it.
   */
  pauseReading(maxMs: number): boolean {
    const socket = this.socket();
    if (this.readingPaused || this.pauseSpent || this.closed || !socket) return false;
    this.readingPaused = true;
    socket.pause();
    this.pauseTimer = setTimeout(() => {
      this.pauseSpent = true;
      this.readingPaused = false;
      this.socket()?.resume();
    }, maxMs);
    return true;
  }

  /** Reads from the IRC server again (the store caught up); a later pauseReading() may pause it again. */
  resumeReading(): void {
    this.pauseSpent = false;
    if (!this.readingPaused) return;
    this.readingPaused = false;
    clearTimeout(this.pauseTimer);
    this.socket()?.resume();
  }

  /** The library's socket (a net or tls socket, typed by the library as its own connection interface). */
  private socket(): { pause(): void; resume(): void } | undefined {
    return this.client.conn as unknown as { pause(): void; resume(): void } | undefined;
  }

  /** Remembers a room message for its echo; the oldest is reflected now when too many wait. */
  awaitEcho(pending: PendingEcho): void {
    this.pendingEchoes.push(pending);
    if (this.pendingEchoes.length > MAX_PENDING_ECHOES) this.pendingEchoes.shift()?.reflect();
  }

  /** One of our lines to `channel` came back: reflects the message it belonged to once all lines did. */
  echoed(channel: string): void {
    const index = this.pendingEchoes.findIndex((p) => p.channel === channel.toLowerCase());
    const pending = this.pendingEchoes[index];
    if (!pending) return;
    pending.lines -= 1;
    if (pending.lines > 0) return;
    this.pendingEchoes.splice(index, 1);
    pending.reflect();
  }

  /** The server refused our line to `channel`: the message it belonged to fails, not reflected. */
  refused(channel: string, text: string): void {
    const index = this.pendingEchoes.findIndex((p) => p.channel === channel.toLowerCase());
    const pending = this.pendingEchoes[index];
    if (!pending) return;
    this.pendingEchoes.splice(index, 1);
    pending.refuse(text);
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

  /** Nicks in each channel now, for comparing after a redial. */
  occupants(): Map<string, string[]> {
    return new Map(
      [...this.channels.keys()].map((c) => [c, [...(this.client.chanData(c)?.users.keys() ?? [])]]),
    );
  }

  /** Sends QUIT (when connected) and closes the socket; the session is unusable afterwards. */
  quit(message = QUIT_MESSAGE): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.graceTimer);
    clearTimeout(this.connectTimer);
    clearTimeout(this.pauseTimer);
    try {
      this.client.disconnect(message);
    } catch {
      // Never connected: nothing to close.
    }
  }
}

/** A line could not be written: the connection is closing (QUIT) or the server went away. */
export class ConnectionClosedError extends Error {
  constructor(server: string) {
    super(`The connection to ${server} is closed.`);
    this.name = "ConnectionClosedError";
  }
}
