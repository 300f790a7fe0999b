/**
 * IRC events on their way to the store. IRC cannot be asked to send a line again, so while the store
 * (Redis) is down a session's events wait here, in order, and are stored once it is back — within
 * STORE_WAIT_MS and MAX_WAITING_EVENTS, beyond which they are dropped with an error in the log and counted,
 * never silently.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidInboundEventError, type AdapterContext, type InboundEvent } from "../../src/adapter.js";
import type { IrcSession } from "./connections.js";

/** How long an IRC event waits for the store (Redis) to come back before it is given up. */
export const STORE_WAIT_MS = 5 * 60_000;
/** Events of one IRC connection that may wait for the store at once (a busy channel for minutes). */
export const MAX_WAITING_EVENTS = 10_000;
const STORE_RETRY_FIRST_MS = 100;
const STORE_RETRY_MAX_MS = 2_000;

export class StoreQueue {
  /** Events per connection waiting for the store; entries go with their session. */
  private readonly waiting = new WeakMap<IrcSession, number>();
  private readonly lost;

  constructor(private readonly ctx: AdapterContext) {
    this.lost = ctx.metrics.counter("events_lost_total", "IRC events dropped because the store stayed down");
  }

  /** Queues events for the user after everything queued before on this session; never rejects. */
  emit(session: IrcSession, events: InboundEvent[]): Promise<unknown> {
    const waiting = this.waiting.get(session) ?? 0;
    if (waiting + events.length > MAX_WAITING_EVENTS) {
      this.ctx.log.error(
        { jid: session.user, dropped: events.length },
        "IRC events lost: too many waiting for the store",
      );
      this.lost.inc(events.length);
      return session.chain;
    }
    this.waiting.set(session, waiting + events.length);
    session.chain = session.chain.then(async () => {
      for (const event of events) {
        await this.store(event, session.user);
        this.waiting.set(session, (this.waiting.get(session) ?? 1) - 1);
      }
    });
    return session.chain;
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
