/**
 * The write side of durable inbound delivery: an adapter's event goes into a Redis stream per component
 * domain, and deliver() resolves only once Redis has it. Only then may the adapter acknowledge the network
 * (HTTP 200 to Twilio, SMTP 250). The Deliverer (deliverer.ts) reads the stream and sends the stanzas.
 */
import type { RedisClient } from "../store/redis-client.js";
import type { InboundEvent } from "../adapter.js";
import type { DurableWrites } from "../store/durable.js";
import { LuaScript } from "../store/lua.js";
import { STORE_VERSION, type Keys } from "../store/keys.js";
import { checkInboundEvent } from "./event-schema.js";

/** How long a network id is remembered to drop a replayed webhook, a re-sent mail or a duplicated callback. */
export const INBOUND_DEDUPE_TTL_SECONDS = 7 * 24 * 3600;

/** Consumer group shared by every gateway instance reading a domain's inbox. */
export const DELIVERY_GROUP = "deliverers";

// Atomically: remember the network id (if given) and append the event; returns 0 for a duplicate. A
// duplicate refreshes the id's TTL: a write, so that a WAIT after it also covers the first copy's write.
const ENQUEUE = new LuaScript(`
if ARGV[1] ~= '' then
  if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) == false then
    redis.call('EXPIRE', KEYS[2], ARGV[2])
    return 0
  end
end
redis.call('XADD', KEYS[1], '*', 'v', ARGV[3], 'e', ARGV[4])
return 1`);

export class InboxUnavailableError extends Error {
  constructor(cause: unknown) {
    super("The message store (Redis) is unavailable; try again later", { cause });
    this.name = "InboxUnavailableError";
  }
}

export class Inbox {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** Where enqueue() writes: replicated before it resolves when the config asks for replicas. */
    private readonly writes: Pick<DurableWrites, "eval">,
  ) {}

  /**
   * Persists an event for delivery on `domain`. With `dedupeId` (the network's id: Twilio MessageSid,
   * Message-ID…), a second event with the same id is dropped and false is returned.
   * Throws InboxUnavailableError when Redis cannot take it, or not on enough replicas
   * (`redis.replication`): the caller answers the network "try later".
   * Every event passes the inbound schema first (event-schema.ts): text and ids are cleaned, and an event
   * that cannot be delivered is refused with InvalidInboundEventError, so it never reaches the stream.
   */
  async enqueue(domain: string, input: InboundEvent, dedupeId?: string): Promise<boolean> {
    const event = checkInboundEvent(input, domain);
    try {
      const added = await this.writes.eval(
        ENQUEUE,
        [this.keys.inbox(domain), this.keys.inboundSeen(domain, dedupeId ?? "")],
        [dedupeId ?? "", String(INBOUND_DEDUPE_TTL_SECONDS), String(STORE_VERSION), JSON.stringify(event)],
      );
      return added === 1;
    } catch (err) {
      throw new InboxUnavailableError(err);
    }
  }

  /** Entries not yet delivered (for metrics and the admin page). */
  async depth(domain: string): Promise<number> {
    return this.redis.xlen(this.keys.inbox(domain));
  }

  /** Seconds the oldest entry not yet delivered has been waiting; 0 when the inbox is empty. */
  async oldestAgeSeconds(domain: string, now = Date.now()): Promise<number> {
    const [first] = await this.redis.xrange(this.keys.inbox(domain), "-", "+", "COUNT", 1);
    const stored = first ? entryTime(first[0]) : undefined;
    return stored === undefined ? 0 : Math.max(0, (now - stored) / 1000);
  }
}

/** When Redis stored a stream entry: its id is `<milliseconds>-<sequence>`. */
export function entryTime(entryId: string): number | undefined {
  const ms = Number(entryId.split("-")[0]);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** Parses a stream entry written by enqueue(); null for a corrupt entry (see checkInboundEvent for the rest). */
export function decodeEntry(fields: string[]): InboundEvent | null {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? "", fields[i + 1] ?? "");
  const raw = map.get("e");
  if (raw === undefined) return null;
  try {
    const event = JSON.parse(raw) as InboundEvent;
    return typeof event === "object" && event !== null && "kind" in event ? event : null;
  } catch {
    return null;
  }
}
