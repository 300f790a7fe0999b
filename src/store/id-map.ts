import type { RedisClient } from "./redis-client.js";
import type { IdMap } from "../adapter.js";

/**
 * Short-lived maps between ids of two worlds, each entry with a TTL: a Twilio MessageSid → the stanza that
 * sent it, an email Message-ID → the XMPP thread, an IRC msgid → a stanza id.
 */
export class RedisIdMap implements IdMap {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: (...parts: string[]) => string,
  ) {}

  async put(kind: string, id: string, value: Record<string, string>, ttlSeconds: number): Promise<void> {
    await this.redis.set(
      this.key("ids", kind, id),
      JSON.stringify({ v: 1, value }),
      "EX",
      Math.ceil(ttlSeconds),
    );
  }

  async get(kind: string, id: string): Promise<Record<string, string> | null> {
    const raw = await this.redis.get(this.key("ids", kind, id));
    return raw === null ? null : ((JSON.parse(raw) as { value?: Record<string, string> }).value ?? null);
  }

  async delete(kind: string, id: string): Promise<void> {
    await this.redis.del(this.key("ids", kind, id));
  }
}
