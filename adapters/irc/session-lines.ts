/**
 * What one connection sends and how fast it reads: flood control (a token bucket, throttle.ts) with a
 * bounded queue, lines refused before they are queued when they hold CR, LF or NUL, and backpressure
 * (reading from the server pauses while the store is behind). Part of IrcSession.
 */
import { GatewayError } from "../../src/xmpp/errors.js";
import type { IrcLink } from "./link.js";
import type { SessionSettings } from "./session.js";
import { TokenBucket } from "./throttle.js";

/** A line could not be written: the connection is closing (QUIT) or the server went away. */
export class ConnectionClosedError extends Error {
  constructor(server: string, options?: ErrorOptions) {
    super(`The connection to ${server} is closed.`, options);
    this.name = "ConnectionClosedError";
  }
}

export class SessionLines {
  private readonly bucket: TokenBucket;
  private closed = false;
  /** Reading from the server is paused (see pauseReading). */
  private readingPaused = false;
  /** Ends a pause that lasted its longest; set from then until the next resumeReading(). */
  private pauseTimer: NodeJS.Timeout | undefined;
  /** The last pause ran out: no new one until resumeReading() (the store caught up). */
  private pauseSpent = false;

  constructor(
    private readonly link: IrcLink,
    private readonly server: string,
    private readonly settings: Pick<SessionSettings, "floodBurst" | "lineDelayMs" | "maxQueuedLines">,
  ) {
    this.bucket = new TokenBucket(settings.floodBurst, settings.lineDelayMs);
  }

  /** Lines waiting for flood control. */
  get queued(): number {
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
  send(command: string, ...args: string[]): Promise<void> {
    return this.sendHandingOff(undefined, command, ...args);
  }

  /** Sends one command; `handOff` runs once flood control lets it go, right before it is written. */
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

  /** Writes one line now; a line for a connection that is closing or lost throws, so its sender is told. */
  private async write(command: string, ...args: string[]): Promise<void> {
    if (this.closed) throw new ConnectionClosedError(this.server);
    try {
      await this.link.send(command, ...args);
    } catch (err) {
      throw new ConnectionClosedError(this.server, { cause: err });
    }
  }

  /**
   * Backpressure: stops reading from the IRC server (its lines wait in the kernel's socket buffers and the
   * server's send queue) until resumeReading(), or for `maxMs` at most. After a pause that ran out, no new
   * pause starts until resumeReading(): a store that is down, not slow, must not keep the connection silent
   * until the server drops it for unanswered PINGs (StoreQueue bounds what waits in memory then).
   * True when this call paused it.
   */
  pauseReading(maxMs: number): boolean {
    if (this.readingPaused || this.pauseSpent || this.closed) return false;
    this.readingPaused = true;
    this.link.pause();
    this.pauseTimer = setTimeout(() => {
      this.pauseSpent = true;
      this.readingPaused = false;
      this.link.resume();
    }, maxMs);
    return true;
  }

  /** Reads from the IRC server again (the store caught up); a later pauseReading() may pause it again. */
  resumeReading(): void {
    this.pauseSpent = false;
    if (!this.readingPaused) return;
    this.readingPaused = false;
    clearTimeout(this.pauseTimer);
    this.link.resume();
  }

  /** No more lines: every later one throws ConnectionClosedError. */
  close(): void {
    this.closed = true;
    clearTimeout(this.pauseTimer);
  }
}
