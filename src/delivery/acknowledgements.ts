/**
 * The last step of delivering a domain's inbound entries: once the XMPP server confirmed them, they are
 * acknowledged in Redis (out of the consumer group's pending list, the stream and the attempts hash) without
 * holding up the next batch, one Redis round trip less per batch. Until Redis has it, an entry stays pending:
 * read again from the pending list, it is known here as confirmed and acknowledged again, never sent twice.
 */
import type { Logger } from "../log.js";
import { LuaScript } from "../store/lua.js";
import type { RedisClient } from "../store/redis-client.js";
import { settledWithin } from "../waiting.js";
import { DELIVERY_GROUP } from "./inbox.js";

/**
 * Entries this process saw confirmed by the XMPP server, remembered until acknowledged in Redis: if the
 * acknowledgement is lost (a failover to a replica that had not received it), they are acknowledged again
 * instead of sent twice.
 */
export const CONFIRMED_MEMORY = 10_000;

/** Acknowledges delivered entries (ARGV[2…]) of the group ARGV[1]: out of the stream and the attempts hash. */
const ACKNOWLEDGE = new LuaScript(`
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
return 1`);

export class Acknowledgements {
  /**
   * Entry ids the XMPP server confirmed (see CONFIRMED_MEMORY), each with its slot in `order`, the ring of the
   * latest ones: the oldest is forgotten in constant time (a Set used as a queue slows down as it fills:
   * finding its first entry skips the ones deleted before it).
   */
  private readonly confirmed = new Map<string, number>();
  private readonly order: (string | undefined)[] = new Array<string | undefined>(CONFIRMED_MEMORY);
  private nextSlot = 0;
  /** Acknowledgements sent to Redis and not yet answered. */
  private readonly underway = new Set<Promise<void>>();

  constructor(
    private readonly redis: RedisClient,
    /** The domain's inbox stream and its attempts hash (see dead-letters.ts). */
    private readonly keys: readonly [stream: string, attempts: string],
    private readonly log: Logger,
  ) {}

  /** Whether the server confirmed this entry before (its acknowledgement did not stay in Redis). */
  wasConfirmed(entryId: string): boolean {
    return this.confirmed.has(entryId);
  }

  /**
   * The server confirmed these entries: remembered, and acknowledged in Redis without being waited for. A
   * script rather than MULTI: it travels in the same write as the other commands of the moment on `via`
   * (the deliverer passes the connection of its next read when none is under way: one write, not two).
   */
  acknowledge(entryIds: readonly string[], via: RedisClient = this.redis): void {
    for (const entryId of entryIds) this.remember(entryId);
    const ack: Promise<void> = ACKNOWLEDGE.run(via, this.keys, [DELIVERY_GROUP, ...entryIds])
      .then(
        () => this.log.debug({ count: entryIds.length }, "delivered"),
        (err: unknown) =>
          this.log.warn(
            { err: (err as Error).message, count: entryIds.length },
            "delivered, but not yet acknowledged in Redis: acknowledged at the next read of the pending list",
          ),
      )
      .finally(() => this.underway.delete(ack));
    this.underway.add(ack);
  }

  /** Waits for the acknowledgements under way (answered or failed), at most `withinMs` if given. */
  async settled(withinMs?: number): Promise<void> {
    const all = Promise.all(this.underway);
    if (withinMs === undefined) await all;
    else await settledWithin(all, withinMs);
  }

  private remember(entryId: string): void {
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % CONFIRMED_MEMORY;
    const oldest = this.order[slot];
    // An entry remembered again since has a later slot: it stays.
    if (oldest !== undefined && this.confirmed.get(oldest) === slot) this.confirmed.delete(oldest);
    this.order[slot] = entryId;
    this.confirmed.set(entryId, slot);
  }
}
