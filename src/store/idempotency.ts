import type { Redis } from "ioredis";
import type { Keys } from "./keys.js";

/**
 * Outbound idempotency: a (sender full JID, stanza id) pair is handed to the adapter once. A client that
 * resends after a reconnect (XEP-0198 resumption, a retry after a gateway restart) reuses the id, and the
 * second copy is dropped. A send that failed is forgotten so the user may try again.
 */
export class OutboundLedger {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlSeconds: number,
  ) {}

  /** Claims the pair; false when it was already claimed within the TTL. */
  async claim(adapter: string, fullJid: string, stanzaId: string): Promise<boolean> {
    const key = this.keys.outboundSeen(adapter, fullJid, stanzaId);
    const ok = await this.redis.set(key, "1", "EX", this.ttlSeconds, "NX");
    return ok === "OK";
  }

  async release(adapter: string, fullJid: string, stanzaId: string): Promise<void> {
    await this.redis.del(this.keys.outboundSeen(adapter, fullJid, stanzaId));
  }
}
