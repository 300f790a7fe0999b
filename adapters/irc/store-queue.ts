/**
 * IRC events on their way to the store. IRC cannot be asked to send a line again, so while the store
 * (Redis) is down a session's events wait here, in order, and are stored once it is back — within
 * STORE_WAIT_MS and MAX_WAITING_EVENTS, beyond which they are dropped with an error in the log and counted,
 * never silently.
 *
 * Backpressure: when more than PAUSE_READING_ABOVE events of one connection wait (a burst in a busy channel
 * arrives faster than the store takes it), reading from that IRC server pauses until fewer than
 * RESUME_READING_BELOW wait; the rest of the burst waits in the socket buffers, not in this process. A pause
 * lasts MAX_READ_PAUSE_MS at most (see IrcSession.pauseReading). From the store on, the inbox (a Redis
 * stream) holds what the XMPP side has not taken yet, and the deliverer sends it in bounded batches.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidInboundEventError, type AdapterContext, type InboundEvent } from "../../src/adapter.js";
import type { IrcSession } from "./connections.js";

/** What the queue needs of a connection: whose events they are, and its reading to pause. */
export type QueuedSession = Pick<IrcSession, "user" | "pauseReading" | "resumeReading">;

/** How long an IRC event waits for the store (Redis) to come back before it is given up. */
export const STORE_WAIT_MS = 5 * 60_000;
/** Events of one IRC connection that may wait for the store at once (a busy channel for minutes). */
export const MAX_WAITING_EVENTS = 10_000;
/** Events of one IRC connection waiting for the store above which reading from its server pauses. */
export const PAUSE_READING_ABOVE = 200;
/** ... and below which it resumes. */
export const RESUME_READING_BELOW = 50;
/**
 * Longest pause of one connection's reading: well below the time IRC servers wait for a PING's answer
 * (usually 2-4 minutes) and the library's 180 s idle timeout.
 */
export const MAX_READ_PAUSE_MS = 30_000;
const STORE_RETRY_FIRST_MS = 100;
const STORE_RETRY_MAX_MS = 2_000;

/**
 * An event, or events still being made (a line waiting for its archive id, a join waiting for its history):
 * stored in their place in the session's order once made. The promise must not reject.
 */
export type Emitted = InboundEvent | Promise<readonly InboundEvent[]>;

export class StoreQueue {
  /** Events per connection waiting for the store; entries go with their session. */
  private readonly waiting = new WeakMap<QueuedSession, number>();
  /** Deliveries per connection, chained so they reach XMPP in the order IRC sent them. */
  private readonly chains = new WeakMap<QueuedSession, Promise<unknown>>();
  private readonly lost;
  private readonly pauses;

  constructor(private readonly ctx: AdapterContext) {
    this.lost = ctx.metrics.counter("events_lost_total", "IRC events dropped because the store stayed down");
    this.pauses = ctx.metrics.counter(
      "read_pauses_total",
      "Times reading from an IRC server paused because too many of its events waited for the store",
    );
  }

  /** Queues events for the user after everything queued before on this session; never rejects. */
  emit(session: QueuedSession, events: readonly Emitted[]): Promise<unknown> {
    const chain = this.chains.get(session) ?? Promise.resolve();
    const waiting = this.waiting.get(session) ?? 0;
    if (waiting + events.length > MAX_WAITING_EVENTS) {
      this.ctx.log.error(
        { jid: session.user, dropped: events.length },
        "IRC events lost: too many waiting for the store",
      );
      this.lost.inc(events.length);
      return chain;
    }
    this.waiting.set(session, waiting + events.length);
    if (waiting + events.length > PAUSE_READING_ABOVE && session.pauseReading(MAX_READ_PAUSE_MS))
      this.pauses.inc();
    const next = chain.then(async () => {
      for (const item of events) {
        for (const event of item instanceof Promise ? await item : [item])
          await this.store(event, session.user);
        const left = (this.waiting.get(session) ?? 1) - 1;
        this.waiting.set(session, left);
        if (left < RESUME_READING_BELOW) session.resumeReading();
      }
    });
    this.chains.set(session, next);
    return next;
  }

  private async store(event: InboundEvent, user: string): Promise<void> {
    const giveUp = Date.now() + STORE_WAIT_MS;
    for (let wait = STORE_RETRY_FIRST_MS; ; wait = Math.min(wait * 2, STORE_RETRY_MAX_MS)) {
      try {
        await this.ctx.deliver(event);
        return;
      } catch (err) {
        if (err instanceof InvalidInboundEventError) {
          // Refused by the inbound schema: waiting cannot help, and the session's later events must not wait.
          this.ctx.log.error(
            { problems: err.problems, jid: user },
            "IRC event refused by the inbound schema",
          );
          this.lost.inc();
          return;
        }
        if (Date.now() + wait > giveUp) {
          this.ctx.log.error({ err, jid: user }, "IRC event lost: the store stayed unavailable");
          this.lost.inc();
          return;
        }
        await sleep(wait);
      }
    }
  }
}
