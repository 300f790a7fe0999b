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

/** Events of one domain written by one script call, at most. */
export const ENQUEUE_BATCH = 100;

// Atomically, for each event i in order (KEYS[1 + i] the key of its network id, ARGV[1 + 2i] the id or '',
// ARGV[2 + 2i] the event): remember the id (if given) and append the event to the stream KEYS[1]; answers
// 1 for an event added, 0 for a duplicate. A duplicate refreshes the id's TTL: a write, so that a WAIT after
// it also covers the first copy's write. ARGV[1]: the ids' TTL; ARGV[2]: the entry version.
const ENQUEUE = new LuaScript(`
local added = {}
for i = 1, (#ARGV - 2) / 2 do
  local id, event = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  added[i] = 1
  if id ~= '' and redis.call('SET', KEYS[1 + i], '1', 'NX', 'EX', ARGV[1]) == false then
    redis.call('EXPIRE', KEYS[1 + i], ARGV[1])
    added[i] = 0
  end
  if added[i] == 1 then redis.call('XADD', KEYS[1], '*', 'v', ARGV[2], 'e', event) end
end
return added`);

/** An event waiting for the write of its turn (see Inbox.enqueue). */
interface Waiting {
  dedupeId: string;
  event: string;
  resolve(added: boolean): void;
  reject(err: unknown): void;
}

export class InboxUnavailableError extends Error {
  constructor(cause: unknown) {
    super("The message store (Redis) is unavailable; try again later", { cause });
    this.name = "InboxUnavailableError";
  }
}

export class Inbox {
  /** Per domain, the events enqueued in this turn of the event loop, written together at its end. */
  private readonly waiting = new Map<string, Waiting[]>();

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
   * The events of a domain enqueued in the same turn (an IRC line to every user in the channel, a mail to
   * several users) are written by one script call, in order: the deliverer then reads them as one batch,
   * sent with one barrier and acknowledged at once, where each alone would cost those round trips.
   */
  async enqueue(domain: string, input: InboundEvent, dedupeId?: string): Promise<boolean> {
    const event = JSON.stringify(checkInboundEvent(input, domain));
    return new Promise<boolean>((resolve, reject) => {
      let turn = this.waiting.get(domain);
      if (!turn) {
        turn = [];
        this.waiting.set(domain, turn);
        process.nextTick(() => this.write(domain));
      }
      turn.push({ dedupeId: dedupeId ?? "", event, resolve, reject });
    });
  }

  private write(domain: string): void {
    const turn = this.waiting.get(domain) ?? [];
    this.waiting.delete(domain);
    for (let i = 0; i < turn.length; i += ENQUEUE_BATCH) {
      const part = turn.slice(i, i + ENQUEUE_BATCH);
      this.writes
        .eval(
          ENQUEUE,
          [this.keys.inbox(domain), ...part.map((w) => this.keys.inboundSeen(domain, w.dedupeId))],
          [
            String(INBOUND_DEDUPE_TTL_SECONDS),
            String(STORE_VERSION),
            ...part.flatMap((w) => [w.dedupeId, w.event]),
          ],
        )
        .then(
          (added) => part.forEach((w, j) => w.resolve((added as number[])[j] === 1)),
          (err: unknown) => {
            const unavailable = new InboxUnavailableError(err);
            for (const w of part) w.reject(unavailable);
          },
        );
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
