import type { Redis } from "ioredis";
import { STORE_VERSION, type Keys } from "./keys.js";

/**
 * Outbound idempotency: a (sender full JID, stanza id) pair is handed to the adapter once. A client that
 * resends after a reconnect (XEP-0198 resumption, a retry after a gateway restart) reuses the id, and the
 * second copy is dropped. A send that failed is forgotten so the user may try again.
 *
 * A claim is also recorded as "in flight" until the adapter's send returns. A claim still in flight after
 * the process died (SIGKILL, power loss) can be neither repeated (the network may have it) nor forgotten
 * (the sender would believe it arrived): `takeInterrupted` hands it over so the sender is told.
 */
export interface InFlight {
  v: number;
  instance: string;
  adapter: string;
  /** Sender full JID and stanza id: where the error goes and which message it is about. */
  from: string;
  id: string;
  /** The contact JID the message was for. */
  to: string;
}

export interface Claim {
  /** The send returned (sent, or refused with an error the sender has seen). */
  settle(sent: boolean): Promise<void>;
}

/** A claim older than this is interrupted whoever holds it: no send takes an hour (relay retries included). */
export const STALE_IN_FLIGHT_MS = 60 * 60 * 1000;
/** How long an instance counts as alive after its last heartbeat (it beats every third of this). */
export const INSTANCE_LEASE_MS = 90_000;

// KEYS[1] seen marker, KEYS[2] in-flight set; ARGV: ttl seconds, now ms, member.
const CLAIM = `
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0`;

export class OutboundLedger {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlSeconds: number,
    private readonly instanceId: string,
  ) {}

  /** Claims the pair; null when it was already claimed within the TTL. */
  async claim(adapter: string, fullJid: string, stanzaId: string, to: string): Promise<Claim | null> {
    const seen = this.keys.outboundSeen(adapter, fullJid, stanzaId);
    const inFlight = this.keys.outboundInFlight(adapter);
    const entry: InFlight = {
      v: STORE_VERSION,
      instance: this.instanceId,
      adapter,
      from: fullJid,
      id: stanzaId,
      to,
    };
    const member = JSON.stringify(entry);
    const ok = await this.redis.eval(
      CLAIM,
      2,
      seen,
      inFlight,
      String(this.ttlSeconds),
      String(Date.now()),
      member,
    );
    if (ok !== 1) return null;
    return {
      settle: async (sent) => {
        const tx = this.redis.multi().zrem(inFlight, member);
        if (!sent) tx.del(seen);
        await tx.exec();
      },
    };
  }

  /** Marks this instance alive for INSTANCE_LEASE_MS: its claims in flight are its own to finish. */
  async heartbeat(): Promise<void> {
    await this.redis.set(this.keys.instanceAlive(this.instanceId), "1", "PX", INSTANCE_LEASE_MS);
  }

  /**
   * Claims whose send was interrupted: this instance's own from before `startedAt` (it was killed mid-send), those of
   * an instance whose heartbeat stopped, and any older than STALE_IN_FLIGHT_MS. `report` must durably tell
   * the sender; the entry is dropped only after it resolves, so a crash here reports again rather than never
   * (the caller deduplicates the report).
   */
  async takeInterrupted(
    adapter: string,
    report: (entry: InFlight) => Promise<void>,
    opts: { startedAt: number; now?: number },
  ): Promise<number> {
    const now = opts.now ?? Date.now();
    const key = this.keys.outboundInFlight(adapter);
    const members = await this.redis.zrange(key, "0", "-1", "WITHSCORES");
    const alive = new Map<string, boolean>();
    const isAlive = async (instance: string): Promise<boolean> => {
      let known = alive.get(instance);
      if (known === undefined) {
        known = (await this.redis.exists(this.keys.instanceAlive(instance))) === 1;
        alive.set(instance, known);
      }
      return known;
    };
    let taken = 0;
    for (let i = 0; i + 1 < members.length; i += 2) {
      const member = members[i] ?? "";
      const since = Number(members[i + 1]);
      let entry: InFlight;
      try {
        entry = JSON.parse(member) as InFlight;
      } catch {
        await this.redis.zrem(key, member);
        continue;
      }
      const interrupted =
        now - since >= STALE_IN_FLIGHT_MS ||
        (entry.instance === this.instanceId ? since < opts.startedAt : !(await isAlive(entry.instance)));
      if (!interrupted) continue;
      await report(entry);
      await this.redis.zrem(key, member);
      taken++;
    }
    return taken;
  }
}
