/**
 * One XEP-0114 component connection, with the reconnect policy @xmpp/component lacks: exponential backoff
 * with jitter (capped), a slow fixed retry when the server says the secret is wrong or another connection
 * holds the domain, TCP_NODELAY, and a keepalive ping (some servers drop idle components). Behind ejabberd's
 * `domain_balancing` (`findSlot`), a stream counts as online only once it knows an address whose answers come
 * back on it (slot-probe.ts); a stream that holds no slot stands by and tries again, like a refused one.
 */
import { EventEmitter, once } from "node:events";
import { component, type Component, type Element } from "@xmpp/component";
import type { Logger } from "../log.js";
import { probeSlot } from "./slot-probe.js";
import { iq, ping } from "./stanzas.js";

/** First reconnect delay; doubles on each failure up to the configured cap. */
export const RECONNECT_BASE_MS = 1_000;
/** How long a keepalive or barrier ping may take before the stream is considered dead. */
export const PING_TIMEOUT_MS = 10_000;

export class LinkDownError extends Error {
  constructor(domain: string) {
    super(`The component stream for ${domain} is not connected`);
    this.name = "LinkDownError";
  }
}

export interface LinkOptions {
  service: string;
  domain: string;
  secret: string;
  /** A domain of the server to ping (keepalive and delivery barrier). */
  serverDomain: string;
  log: Logger;
  keepaliveMs: number;
  reconnectMaxMs: number;
  conflictRetryMs: number;
  /** The domain is balanced by ejabberd (config xmpp.balancing.enabled): find this stream's slot. */
  findSlot?: boolean;
}

/** Delay before reconnect attempt `attempt` (0-based): full exponential backoff with ±50 % jitter. */
export function backoffDelay(attempt: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

/** Emits "online" and "offline" as the stream comes and goes, "noslot" when ejabberd gave it no slot. */
export class ComponentLink extends EventEmitter<{ online: []; offline: []; noslot: [] }> {
  readonly entity: Component;
  readonly domain: string;
  private readonly log: Logger;
  private online = false;
  private stopped = true;
  private attempt = 0;
  private lastCondition: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private connecting = false;
  /** Reconnects so far (for metrics and tests). */
  reconnects = 0;
  /** Which connection is online: changes each time the stream comes up, so a barrier can tell them apart. */
  private connection = 0;
  /** Where keepalive and barrier pings go: the server, or the address found for this stream's slot. */
  private pingTarget: string;
  /** The delay before the pending reconnect attempt (for status pages and tests). */
  retryDelayMs: number | undefined;

  constructor(private readonly opts: LinkOptions) {
    super();
    this.domain = opts.domain;
    this.log = opts.log.child({ domain: opts.domain });
    this.pingTarget = opts.serverDomain;
    this.entity = component({ service: opts.service, domain: opts.domain, password: opts.secret });
    // Replace the library's fixed 1 s reconnect with our policy.
    this.entity.reconnect.stop();
    this.entity.on("online", () => void this.onAuthenticated());
    this.entity.on("disconnect", () => this.onDisconnect());
    this.entity.on("error", (err: Error & { condition?: string; code?: string }) => {
      this.lastCondition = err.condition ?? err.code ?? err.message;
      if (err.condition) this.log.warn({ condition: err.condition, text: err.message }, "stream error");
      else this.log.debug({ err: err.message }, "connection error");
    });
  }

  get isOnline(): boolean {
    return this.online;
  }

  /** The current connection's number (see send() and ping()). */
  get generation(): number {
    return this.connection;
  }

  /** Starts connecting in the background; never rejects (a down server is retried). */
  start(): void {
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.keepalive);
    const wasOnline = this.online;
    this.online = false;
    try {
      if (wasOnline) await this.entity.stop();
      else if (this.entity.status !== "offline") await this.entity.disconnect(1000);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "error while closing the stream");
    }
  }

  /** Resolves when the stream is online (at once if it is). */
  async waitOnline(signal?: AbortSignal): Promise<void> {
    if (this.online) return;
    await once(this, "online", signal ? { signal } : {});
  }

  /** Throws LinkDownError unless the stream is online (on connection `generation`, when given). */
  private assertOnline(generation?: number): void {
    if (!this.online || (generation !== undefined && generation !== this.connection))
      throw new LinkDownError(this.domain);
  }

  /** Sends a stanza; with `generation`, only on that connection (LinkDownError after a reconnect). */
  async send(stanza: Element, generation?: number): Promise<void> {
    this.assertOnline(generation);
    await this.entity.send(stanza);
  }

  /**
   * Sends stanzas in order with one write to the socket (corked): on loopback, each write is a system call that
   * also runs the server's receive path, the largest single cost of a delivered batch. With `generation`, only
   * on that connection. Resolves once all of them are written; rejects if the write fails.
   */
  async sendAll(stanzas: readonly Element[], generation?: number): Promise<void> {
    this.assertOnline(generation);
    // Each send() writes synchronously before its first await: all of them land in the corked buffer.
    await Promise.all(this.corked(() => stanzas.map((stanza) => this.entity.send(stanza))));
  }

  /** Runs `write` with the socket corked: what it writes synchronously leaves in one write. */
  corked<T>(write: () => T): T {
    const socket = this.entity.socket;
    socket?.cork();
    try {
      return write();
    } finally {
      socket?.uncork();
    }
  }

  /**
   * Pings the server and waits for the answer. The server handles a component stream in order, so the
   * pong proves that every stanza written before the ping reached it — on the same connection only: with
   * `generation` (of the connection that carried the stanzas), a reconnect before or during the ping fails
   * it with LinkDownError, since a pong on a new stream says nothing about what the old one carried.
   */
  async ping(timeoutMs = PING_TIMEOUT_MS, generation?: number): Promise<void> {
    this.assertOnline(generation);
    // A stream that closes meanwhile will never carry the answer: fail at once rather than at the timeout.
    // A plain listener, removed after: once() with an AbortSignal made a DOMException, with its stack, on
    // every ping (2.6 % of the gateway's CPU on webhooks at 500 msg/s, in a profile).
    let offline = (): void => undefined;
    const lost = new Promise<never>((_resolve, reject) => {
      offline = () => reject(new LinkDownError(this.domain));
      this.once("offline", offline);
    });
    try {
      await Promise.race([
        this.entity.iqCaller.request(iq({ type: "get", to: this.pingTarget }, ping()), timeoutMs),
        lost,
      ]);
    } catch (err) {
      // An error answer (a server without XEP-0199) proves the ordering just as well as a pong.
      if ((err as { name?: string }).name !== "StanzaError") throw err;
    } finally {
      this.off("offline", offline);
    }
    this.assertOnline(generation);
  }

  private async connect(): Promise<void> {
    if (this.stopped || this.connecting) return;
    this.connecting = true;
    try {
      await this.entity.connect(this.opts.service);
      await this.entity.open({ domain: this.opts.domain });
    } catch (err) {
      this.lastCondition ??= (err as Error).message;
      // A failed connect closes the socket and fires 'disconnect' when a socket existed; make sure a retry
      // is scheduled either way.
      if (this.entity.status === "offline" || this.entity.status === "disconnect") this.scheduleReconnect();
    } finally {
      this.connecting = false;
    }
  }

  /** The server took the secret: online at once, or once this stream's slot is known (findSlot). */
  private async onAuthenticated(): Promise<void> {
    this.entity.socket?.setNoDelay(true);
    if (!this.opts.findSlot) return this.onOnline();
    const target = await probeSlot(this.entity, this.opts.serverDomain);
    if (this.entity.status !== "online") return; // closed meanwhile: the reconnect is already planned
    if (target) {
      this.pingTarget = target;
      return this.onOnline();
    }
    this.lastCondition = "no-slot";
    this.emit("noslot");
    await this.entity.disconnect(1000).catch(() => undefined);
  }

  private onOnline(): void {
    this.online = true;
    this.connection++;
    if (this.attempt > 0) this.reconnects++;
    this.attempt = 0;
    this.lastCondition = undefined;
    this.log.info("component stream online");
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => void this.keepaliveTick(), this.opts.keepaliveMs);
    this.keepalive.unref();
    this.emit("online");
  }

  private onDisconnect(): void {
    clearInterval(this.keepalive);
    const wasOnline = this.online;
    this.online = false;
    if (wasOnline) {
      this.log.warn({ reason: this.lastCondition }, "component stream lost");
      this.emit("offline");
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const condition = this.lastCondition;
    let delay: number;
    if (condition === "no-slot") {
      delay = this.opts.conflictRetryMs;
      this.log.warn(
        { retryMs: delay },
        `ejabberd gave this connection no slot for ${this.domain} (all component_number slots are held); ` +
          "standing by",
      );
    } else if (condition === "conflict") {
      delay = this.opts.conflictRetryMs;
      this.log.warn(
        { retryMs: delay },
        `another connection already serves ${this.domain} (conflict); standing by as a hot standby`,
      );
    } else if (condition === "not-authorized") {
      delay = this.opts.reconnectMaxMs;
      this.log.error(
        { retryMs: delay },
        `the XMPP server rejected the secret for ${this.domain} (not-authorized): check the secret on both sides`,
      );
    } else if (condition === "host-unknown") {
      delay = this.opts.reconnectMaxMs;
      this.log.error(
        { retryMs: delay },
        `the XMPP server does not know the component ${this.domain} (host-unknown): add it to the server's config`,
      );
    } else {
      delay = backoffDelay(this.attempt, this.opts.reconnectMaxMs);
      this.log.info({ retryMs: delay, reason: condition, attempt: this.attempt + 1 }, "reconnecting");
    }
    this.attempt++;
    this.retryDelayMs = delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastCondition = undefined;
      void this.connect();
    }, delay);
  }

  private async keepaliveTick(): Promise<void> {
    if (!this.online) return;
    try {
      await this.ping();
    } catch (err) {
      if (!this.online) return;
      this.log.warn({ err: (err as Error).message }, "keepalive ping failed; reconnecting");
      this.lastCondition = "keepalive timeout";
      await this.entity.disconnect(1000).catch(() => undefined);
    }
  }
}
