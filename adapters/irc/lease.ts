/**
 * Ownership of IRC connections across gateway instances (DESIGN "Scale"): a (user, server) connection is
 * held by the instance whose id is in Redis under a lease that it renews. Two instances never both connect
 * a user to the same server; a crashed instance's connections are taken over once its leases expire, and a
 * graceful stop releases them at once.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { scanKeys, type RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { LEASE_ACQUIRE, LEASE_RELEASE } from "../../src/store/lease-scripts.js";

/** Seconds a lease lasts unrenewed: how long a crashed instance's users wait before another takes over. */
export const LEASE_SECONDS = 30;
/** How often the owner renews its leases (a third of their life, so one missed renewal is harmless). */
export const LEASE_RENEW_MS = 10_000;

export class Leases {
  /**
   * The owner id in the leases: the gateway's instance id (stable across restarts, so a restarted instance
   * takes its own connections back at once), or host, pid and a random part when none is given.
   */
  readonly owner: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    private readonly seconds = LEASE_SECONDS,
    owner?: string,
  ) {
    this.owner = owner ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  private keyOf(user: string, server: string): string {
    return this.key("lease", user, server);
  }

  /** Takes or renews the lease; false when another instance holds it. */
  async acquire(user: string, server: string): Promise<boolean> {
    const held = await this.redis.eval(
      LEASE_ACQUIRE,
      1,
      this.keyOf(user, server),
      this.owner,
      String(this.seconds * 1000),
    );
    return held === 1;
  }

  async release(user: string, server: string): Promise<void> {
    await this.redis.eval(LEASE_RELEASE, 1, this.keyOf(user, server), this.owner);
  }

  /**
   * Releases every lease `owner` holds (a dead instance whose users this one now serves: see the core's
   * balancing) and returns their (user, server), so that their connections can be opened here at once
   * instead of after LEASE_SECONDS.
   */
  async releaseHeldBy(owner: string): Promise<{ user: string; server: string }[]> {
    const base = this.key("lease", "");
    const pattern = `${base.replace(/[*?[\]\\]/g, "\\$&")}*`;
    const freed: { user: string; server: string }[] = [];
    // Every master of a cluster, not whichever node a plain SCAN would reach.
    for await (const keys of scanKeys(this.redis, pattern, 500))
      for (const key of keys) {
        if ((await this.redis.eval(LEASE_RELEASE, 1, key, owner)) !== 1) continue;
        // key = base + user + ":" + server; a bare JID and a host name hold no ":" of their own.
        const rest = key.slice(base.length);
        const colon = rest.lastIndexOf(":");
        freed.push({ user: rest.slice(0, colon), server: rest.slice(colon + 1) });
      }
    return freed;
  }

  /** The instance holding the lease, or null. */
  holder(user: string, server: string): Promise<string | null> {
    return this.redis.get(this.keyOf(user, server));
  }
}
