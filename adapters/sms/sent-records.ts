/**
 * What the gateway keeps of each SMS it sent, by Twilio's MessageSid, for the status callbacks that follow: who
 * sent it and which stanza it was, the contact, whether a receipt was asked for, and how far the reports have
 * got. One Redis hash per message (RECORD_TTL_SECONDS).
 *
 * A callback moves the status forward in one script: callbacks come twice, out of order and at the same time,
 * so a read-then-write could move a message backwards; and one round trip per callback instead of two.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { IdMap, KeyBuilder } from "../../src/adapter.js";
import { LuaScript } from "../../src/store/lua.js";
import { statusRank, TERMINAL_RANK } from "./twilio-errors.js";

/** How long the record of an outbound message is kept for its status callbacks. */
export const RECORD_TTL_SECONDS = 7 * 24 * 3600;

export interface SentRecord {
  /** The sender's full JID. */
  from: string;
  /** The stanza id of the message. */
  id: string;
  /** The contact's JID (the receipt's sender). */
  contact: string;
  /** "1" when the sender asked for a receipt (XEP-0184). */
  receipt: string;
  status: string;
}

/**
 * KEYS[1] the record; ARGV[1] the reported status, ARGV[2] its rank, ARGV[3] the rank from which a status is
 * final. false: no record; 0: the report does not move the message forward (older, repeated, or after a
 * final one); else the record as it was before, as a flat field/value list.
 */
const ADVANCE = new LuaScript(`
local before = redis.call('HGETALL', KEYS[1])
if #before == 0 then return false end
local rank = tonumber(redis.call('HGET', KEYS[1], 'rank') or '1')
if tonumber(ARGV[2]) <= rank or rank >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2])
return before`);

/**
 * KEYS[1] the record; ARGV[1] its TTL in seconds, then field/value pairs. One script rather than MULTI: it
 * travels in the same write as the other commands of the moment, and a cluster client retries it alone.
 */
const PUT = new LuaScript(`
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1`);

export type Advance = { kind: "missing" } | { kind: "stale" } | { kind: "advanced"; before: SentRecord };

export class SentRecords {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    /** Where records were kept before (a JSON value in the id map): read for messages sent before an upgrade. */
    private readonly legacy: IdMap,
  ) {}

  private keyOf(sid: string): string {
    return this.key("sent", sid);
  }

  async put(sid: string, record: SentRecord): Promise<void> {
    const fields = Object.entries({ ...record, rank: String(statusRank(record.status) || 1) }).flat();
    await PUT.run(this.redis, [this.keyOf(sid)], [RECORD_TTL_SECONDS, ...fields]);
  }

  /** Moves the message to `status` if that is forward; says whether it did, and what the record was. */
  async advance(sid: string, status: string): Promise<Advance> {
    const args = [status, statusRank(status), TERMINAL_RANK];
    let result = await ADVANCE.run(this.redis, [this.keyOf(sid)], args);
    if (result === null) {
      const old = await this.legacy.get("sid", sid);
      if (!old) return { kind: "missing" };
      await this.put(sid, { from: "", id: "", contact: "", receipt: "0", status: "queued", ...old });
      result = await ADVANCE.run(this.redis, [this.keyOf(sid)], args);
    }
    if (!Array.isArray(result)) return { kind: result === null ? "missing" : "stale" };
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < result.length; i += 2) fields.set(String(result[i]), String(result[i + 1]));
    return {
      kind: "advanced",
      before: {
        from: fields.get("from") ?? "",
        id: fields.get("id") ?? "",
        contact: fields.get("contact") ?? "",
        receipt: fields.get("receipt") ?? "0",
        status: fields.get("status") ?? "queued",
      },
    };
  }
}
