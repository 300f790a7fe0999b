/**
 * The line layer of one IRC connection: a TCP or TLS socket, server bytes cut into bounded lines (lines.ts),
 * each decoded on its own (UTF-8, else the fallback charset) and parsed (message.ts), and registration:
 * CAP LS 302 → CAP REQ of the IRCv3 capabilities the gateway uses → SASL PLAIN → CAP END, NICK/USER, PING.
 *
 * Why the gateway's own line layer and not matrix-org-irc (used before) or irc-framework: matrix-org-irc has
 * no extension point for IRCv3 message tags, for capabilities beyond sasl, for its parser, for its socket
 * (backpressure) or for CTCP; using it meant replacing its parser in the module's exports, overriding its
 * `onData`, `emit` and `ctcp`, and reading its private CAP state and socket. It also kept a channel state of
 * its own, wrong for NICK of users without a prefix. irc-framework is IRCv3-native but brings its own channel
 * state, flood queue and reconnects, which the gateway owns already (session.ts, throttle.ts, connections.ts),
 * and its socket is as private. Measured (bench/RESULTS.md "IRC line layer", 1,000 connections): heap per
 * connection 17 → 9 KiB, RSS 41 → 38 KiB, CPU per server line 38 → 12 µs; this file, message.ts and roster.ts
 * (about 600 lines with their comments) replace 2,646 lines of library and 96 of patches. No run-time patching.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { GatewayError } from "../../src/xmpp/errors.js";
import { LineReader } from "./lines.js";
import { formatLine, NUMERIC, parseLine, type IrcMessage } from "./message.js";
import { decodeIrcText } from "./split.js";

/** IRCv3 capabilities the gateway uses when the server offers them (sasl is asked for when configured). */
export const WANTED_CAPS = [
  "server-time",
  "message-tags",
  "echo-message",
  "away-notify",
  "multi-prefix",
] as const;

/**
 * A connection silent this long is dead (matrix-org-irc's figure; servers PING every 1-3 minutes, and
 * the gateway answers each, so a live connection is never this quiet).
 */
export const IDLE_TIMEOUT_MS = 180_000;
/** After QUIT, how long the server gets to close the connection before the socket is destroyed. */
export const QUIT_CLOSE_MS = 2_000;
/** SASL AUTHENTICATE payloads are sent in pieces of this many bytes (IRCv3 sasl-3.1). */
const SASL_CHUNK = 400;
/** Nicks tried with a number appended when the nick is in use on a redial, before giving up. */
export const MAX_NICK_ATTEMPTS = 10;

export interface LinkOptions {
  server: string;
  host: string;
  port: number;
  tls: boolean;
  nick: string;
  userName: string;
  realName: string;
  sasl?: { account: string; password: string } | undefined;
  fallbackCharset: string;
  /** Connecting and registering must be done within this. */
  connectTimeoutMs: number;
  /** When the nick is in use: take another (a redial) rather than failing. */
  otherNickOk: boolean;
}

/** What the link tells its owner, in the order it happens. */
export interface LinkListener {
  /** A server line, parsed (PING and registration lines included). */
  line(message: IrcMessage): void;
  /** The server registered the nick (RPL_WELCOME). */
  registered(): void;
  /** Registration failed (refused, unreachable, timed out); `closed` follows. */
  failed(error: GatewayError): void;
  /** The connection is over (after QUIT, a server close, an error or a silence). */
  closed(): void;
  /** A server line longer than IRC allows was dropped. */
  overlong(bytes: number): void;
}

type Phase = "idle" | "registering" | "registered" | "closed";

export class IrcLink {
  private socket: Socket | undefined;
  private phase: Phase = "idle";
  private timer: NodeJS.Timeout | undefined;
  private currentNick: string;
  private mask = "";
  private readonly offered = new Set<string>();
  private readonly acked = new Set<string>();
  private nickAttempt = 0;
  private paused = false;
  /** The server registered the nick (RPL_WELCOME) at some point; stays true once the connection is gone. */
  private welcomed = false;

  constructor(
    private readonly opts: LinkOptions,
    private readonly listener: LinkListener,
  ) {
    this.currentNick = opts.nick;
  }

  /** The nick the server knows this connection by. */
  get nick(): string {
    return this.currentNick;
  }

  /** `nick!user@host` from RPL_WELCOME, or "" when the server did not say. */
  get hostMask(): string {
    return this.mask;
  }

  /** The server registered the nick (even if the connection is gone since). */
  get isRegistered(): boolean {
    return this.welcomed;
  }

  /** Whether the server acknowledged an IRCv3 capability. */
  hasCap(cap: string): boolean {
    return this.acked.has(cap);
  }

  connect(): void {
    if (this.phase !== "idle") return;
    this.phase = "registering";
    const { host, port } = this.opts;
    const socket = this.opts.tls
      ? tlsConnect({ host, port, servername: /^[\d.:]+$/.test(host) ? undefined : host })
      : netConnect({ host, port });
    this.socket = socket;
    // Each line leaves when written: with Nagle's algorithm the next line of a burst waits until the server
    // acknowledged the previous one, up to a delayed ACK (40 ms on Linux) per line. (tls.connect ignores a
    // noDelay option: the call sets it for both.)
    socket.setNoDelay(true);
    this.timer = setTimeout(
      () =>
        this.fail(
          new GatewayError(
            "remote-server-timeout",
            `The IRC server ${this.opts.server} did not answer within ${this.opts.connectTimeoutMs / 1000} seconds.`,
          ),
        ),
      this.opts.connectTimeoutMs,
    );
    const reader = new LineReader((bytes) => this.listener.overlong(bytes));
    socket.on(this.opts.tls ? "secureConnect" : "connect", () => this.register());
    socket.on("data", (chunk: Buffer) => {
      for (const bytes of reader.push(chunk)) {
        if (this.phase === "closed") return;
        const message = parseLine(decodeIrcText(bytes, this.opts.fallbackCharset));
        if (message) this.receive(message);
      }
    });
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on("error", (err: Error) =>
      this.fail(
        new GatewayError(
          "remote-server-not-found",
          `Cannot reach the IRC server ${this.opts.server} (${host} port ${port}): ${err.message}.`,
        ),
      ),
    );
    socket.on("close", () => {
      this.fail(
        new GatewayError(
          "remote-server-not-found",
          `The IRC server ${this.opts.server} closed the connection.`,
        ),
      );
      this.phase = "closed";
      clearTimeout(this.timer);
      this.listener.closed();
    });
  }

  private register(): void {
    this.raw("CAP", "LS", "302");
    this.raw("NICK", this.currentNick);
    this.raw("USER", this.opts.userName, "0", "*", this.opts.realName);
  }

  private receive(m: IrcMessage): void {
    if (m.command === "PING") this.raw("PONG", ...m.params);
    else if (this.phase === "registering") this.registration(m);
    this.listener.line(m);
  }

  /** Registration's own lines (ircv3.net capability-negotiation, sasl-3.1; RFC 2812 §3.1). */
  private registration(m: IrcMessage): void {
    const [, sub, ...rest] = m.params;
    switch (m.command) {
      case "CAP":
        if (sub === "LS") {
          // CAP * LS * :caps… is continued; the last line has no "*".
          const more = rest.length > 1 && rest[0] === "*";
          for (const cap of (rest[rest.length - 1] ?? "").split(" "))
            if (cap) this.offered.add(cap.split("=")[0] ?? cap);
          if (!more) this.requestCaps();
        } else if (sub === "ACK") {
          for (const cap of (rest[rest.length - 1] ?? "").split(" ")) if (cap) this.acked.add(cap);
          if (this.opts.sasl && this.acked.has("sasl")) this.raw("AUTHENTICATE", "PLAIN");
          else this.raw("CAP", "END");
        } else if (sub === "NAK") this.raw("CAP", "END");
        return;
      case "AUTHENTICATE": {
        const sasl = this.opts.sasl;
        if (m.params[0] !== "+" || !sasl) return;
        const payload = Buffer.from(`${sasl.account}\0${sasl.account}\0${sasl.password}`).toString("base64");
        for (let i = 0; i <= payload.length; i += SASL_CHUNK)
          this.raw("AUTHENTICATE", payload.slice(i, i + SASL_CHUNK) || "+");
        return;
      }
      case NUMERIC.RPL_SASLSUCCESS:
        this.raw("CAP", "END");
        return;
      case NUMERIC.ERR_SASLFAIL:
      case NUMERIC.ERR_SASLTOOLONG:
      case NUMERIC.ERR_SASLABORTED:
      case NUMERIC.ERR_SASLALREADY:
        this.raw("CAP", "END");
        this.fail(
          new GatewayError("not-authorized", `${this.opts.server} refused the SASL account or password.`),
        );
        return;
      case NUMERIC.ERR_NICKNAMEINUSE:
      case NUMERIC.ERR_NICKCOLLISION:
        return this.nickInUse(m.params[1] ?? this.currentNick);
      case NUMERIC.ERR_ERRONEUSNICKNAME:
        this.fail(
          new GatewayError(
            "jid-malformed",
            `${this.opts.server} does not accept ${this.opts.nick} as a nick.`,
          ),
        );
        return;
      case NUMERIC.RPL_WELCOME: {
        this.currentNick = m.params[0] ?? this.currentNick;
        const last = (m.params[1] ?? "").split(/\s+/).pop() ?? "";
        this.mask = last.includes("!") ? last : "";
        this.phase = "registered";
        this.welcomed = true;
        clearTimeout(this.timer);
        this.listener.registered();
        return;
      }
    }
  }

  private requestCaps(): void {
    const wanted: string[] = WANTED_CAPS.filter((cap) => this.offered.has(cap));
    if (this.opts.sasl && this.offered.has("sasl")) wanted.push("sasl");
    if (wanted.length === 0) this.raw("CAP", "END");
    else this.raw("CAP", "REQ", wanted.join(" "));
  }

  /**
   * The nick is taken: a first connection fails (the user picks another); a redial takes the nick with a
   * number, cut to the length the server showed it can hold (it echoes the nick it refused, truncated).
   */
  private nickInUse(refused: string): void {
    if (!this.opts.otherNickOk || this.nickAttempt >= MAX_NICK_ATTEMPTS) {
      this.fail(
        new GatewayError(
          "conflict",
          `The nick ${this.opts.nick} is already in use on ${this.opts.server}; join again with another nick.`,
        ),
      );
      this.close();
      return;
    }
    this.nickAttempt += 1;
    const suffix = String(this.nickAttempt);
    const room =
      refused.length < this.currentNick.length ? refused.length : this.opts.nick.length + suffix.length;
    this.currentNick = `${this.opts.nick.slice(0, Math.max(1, room - suffix.length))}${suffix}`;
    this.raw("NICK", this.currentNick);
  }

  /** Registration failed: reported once, before `closed`. */
  private fail(error: GatewayError): void {
    if (this.phase !== "registering") return;
    this.phase = "closed";
    clearTimeout(this.timer);
    this.listener.failed(error);
    this.socket?.destroy();
  }

  /** Writes one command now (no flood control: see IrcSession); arguments never hold CR, LF or NUL. */
  send(command: string, ...params: string[]): Promise<void> {
    const socket = this.socket;
    if (!socket || this.phase === "closed" || socket.destroyed || !socket.writable)
      return Promise.reject(new Error(`The connection to ${this.opts.server} is closed.`));
    return new Promise<void>((resolve, reject) => {
      socket.write(`${formatLine(command, params)}\r\n`, "utf8", (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Registration lines and PONG: written at once, failures show as the connection closing. */
  private raw(command: string, ...params: string[]): void {
    this.send(command, ...params).catch(() => undefined);
  }

  /** Our nick changed (NICK from ourselves). */
  renamed(nick: string): void {
    this.currentNick = nick;
  }

  /** Stops reading from the server (backpressure); lines wait in the kernel's buffers and the server's queue. */
  pause(): void {
    if (this.paused || !this.socket) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket?.resume();
  }

  /** Sends QUIT (when connected) and closes; the link is unusable afterwards. */
  quit(message: string): void {
    const socket = this.socket;
    if (this.phase === "closed" || !socket) {
      this.phase = "closed";
      return;
    }
    this.send("QUIT", message)
      .catch(() => undefined)
      .finally(() => socket.end());
    this.phase = "closed";
    clearTimeout(this.timer);
    setTimeout(() => socket.destroy(), QUIT_CLOSE_MS).unref();
  }

  private close(): void {
    this.phase = "closed";
    this.socket?.destroy();
  }
}
