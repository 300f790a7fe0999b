/**
 * The Redis side of self-healing balancing: which instances exist, which are alive, who holds a dead
 * instance's slots, and who asks for them back.
 *
 * - Each instance writes a heartbeat key with a TTL of `deadAfterSeconds`, every `heartbeatSeconds`, and its
 *   record (domains, start time, last beat) in the members hash. An instance in the hash without a heartbeat
 *   key is dead: killed (its key expired) or stopped (it deleted its key, so that its slots are taken over at
 *   once). Redis's own clock decides the expiry, so the instances' clocks need not agree.
 * - The first survivor to SET NX the dead instance's takeover lease holds its slots (exactly one does), and
 *   renews the lease at each beat; if that survivor dies too, the lease expires and another takes over.
 * - A fresh instance that wants a slot back SETs NX the give-back request; the holder closes its extra
 *   streams, forgets the dead instance and deletes its lease; the fresh instance connects once the lease is
 *   gone.
 *
 * This heartbeat is separate from the outbound ledger's (`alive:<id>`, 90 s): that one must outlive the
 * longest send, this one must notice a death within seconds.
 */
import type { RedisClient } from "../store/redis-client.js";
import { z } from "zod";
import type { Keys } from "../store/keys.js";
import { LEASE_ACQUIRE, LEASE_RELEASE } from "../store/lease-scripts.js";

/** One instance in the members hash (version 1). */
const memberSchema = z.object({
  v: z.literal(1),
  /** The domains whose slot it held at its last beat (none while it stands by without a slot). */
  domains: z.array(z.string()),
  /** When it started (ms, its own clock). */
  startedAt: z.number(),
  /** Its last beat (ms, its own clock). */
  beatAt: z.number(),
});
export type MemberRecord = z.infer<typeof memberSchema>;

export interface Member extends MemberRecord {
  id: string;
}

export interface BalancingTimes {
  heartbeatMs: number;
  deadAfterMs: number;
}

export class Members {
  readonly startedAt = Date.now();

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly instanceId: string,
    /** The domains this instance serves (its config). */
    readonly domains: readonly string[],
    /** The domains whose own stream holds a slot now: what a survivor must take over if this one dies. */
    private readonly holding: () => string[],
    readonly times: BalancingTimes,
  ) {}

  /** Says this instance is alive for deadAfterMs more. */
  async beat(): Promise<void> {
    const record: MemberRecord = {
      v: 1,
      domains: this.holding(),
      startedAt: this.startedAt,
      beatAt: Date.now(),
    };
    await this.redis
      .multi()
      .set(this.keys.balancingHeartbeat(this.instanceId), "1", "PX", this.times.deadAfterMs)
      .hset(this.keys.balancingMembers(), this.instanceId, JSON.stringify(record))
      .exec();
  }

  /** A graceful stop: dead from now on, so that a survivor takes the slots over without waiting. */
  async leave(): Promise<void> {
    await this.redis.del(this.keys.balancingHeartbeat(this.instanceId));
  }

  /** Every other instance ever seen and not forgotten, with whether it beats. Unreadable records are skipped. */
  async others(): Promise<(Member & { alive: boolean })[]> {
    const all = await this.redis.hgetall(this.keys.balancingMembers());
    const members: Member[] = [];
    for (const [id, json] of Object.entries(all)) {
      if (id === this.instanceId) continue;
      const parsed = memberSchema.safeParse(safeJson(json));
      if (parsed.success) members.push({ id, ...parsed.data });
    }
    if (members.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const m of members) pipeline.exists(this.keys.balancingHeartbeat(m.id));
    const beats = (await pipeline.exec()) ?? [];
    return members.map((m, i) => ({ ...m, alive: beats[i]?.[1] === 1 }));
  }

  /** Forgets a dead instance whose slots are served again (given back, or filled by a fresh instance). */
  async forget(deadId: string): Promise<void> {
    await this.redis.hdel(this.keys.balancingMembers(), deadId);
  }

  /** Whether the instance is still in the members hash (not forgotten). */
  async known(id: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.balancingMembers(), id)) === 1;
  }

  /** Takes or renews the lease on a dead instance's slots; true when this instance holds it. */
  async holdTakeover(deadId: string): Promise<boolean> {
    const held = await this.redis.eval(
      LEASE_ACQUIRE,
      1,
      this.keys.slotTakeover(deadId),
      this.instanceId,
      String(this.times.deadAfterMs),
    );
    return held === 1;
  }

  async releaseTakeover(deadId: string): Promise<void> {
    await this.redis.eval(LEASE_RELEASE, 1, this.keys.slotTakeover(deadId), this.instanceId);
  }

  /** Which instance holds the dead instance's slots, if any. */
  takeoverHolder(deadId: string): Promise<string | null> {
    return this.redis.get(this.keys.slotTakeover(deadId));
  }

  /** Whether a fresh instance asked for the dead instance's slots. */
  async giveBackAsked(deadId: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.slotGiveBack(deadId))) === 1;
  }

  /** Asks for the dead instance's slots back; false when another fresh instance asked first. */
  async askGiveBack(deadId: string): Promise<boolean> {
    const ok = await this.redis.set(
      this.keys.slotGiveBack(deadId),
      this.instanceId,
      "PX",
      3 * this.times.deadAfterMs,
      "NX",
    );
    return ok === "OK";
  }

  async clearGiveBack(deadId: string): Promise<void> {
    await this.redis.eval(LEASE_RELEASE, 1, this.keys.slotGiveBack(deadId), this.instanceId);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
