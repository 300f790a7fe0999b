/**
 * Redialing a lost IRC server: exponential backoff with jitter, and a per-server stagger so that a server
 * coming back (or a gateway restart) does not see hundreds of connections in the same second
 * (matrix-appservice-irc #384, #1174: mass reconnects flooded both sides).
 */

/** First pause before redialing; it doubles with each failed attempt. */
export const RECONNECT_BASE_MS = 1000;
/** Longest pause between two attempts (config reconnectMaxSeconds overrides it). */
export const DEFAULT_RECONNECT_MAX_SECONDS = 300;
/** Attempts before the gateway gives up and tells the user it left the rooms (about an hour at 300 s). */
export const DEFAULT_RECONNECT_MAX_ATTEMPTS = 20;
/** Seconds of outage the user's rooms stay silent; after that they get a plain message saying why. */
export const DEFAULT_OUTAGE_NOTICE_SECONDS = 15;
/** Least time between two connections the gateway starts to one IRC server. */
export const CONNECT_STAGGER_MS = 250;

/**
 * Pause before attempt `attempt` (0 = first redial): "equal jitter", half fixed and half random, so
 * connections lost together do not come back together.
 */
export function backoffMs(attempt: number, maxSeconds: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxSeconds * 1000, RECONNECT_BASE_MS * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Hands out start times so that connections to one server begin at least CONNECT_STAGGER_MS apart.
 * Holds one number per IRC server (bounded by the allow-list).
 */
export class Stagger {
  private readonly next = new Map<string, number>();

  constructor(private readonly gapMs = CONNECT_STAGGER_MS) {}

  /** Milliseconds to wait, from `now`, before starting a connection that should start in `delayMs`. */
  delay(server: string, delayMs: number, now = Date.now()): number {
    const start = Math.max(now + delayMs, this.next.get(server) ?? 0);
    this.next.set(server, start + this.gapMs);
    return start - now;
  }
}
