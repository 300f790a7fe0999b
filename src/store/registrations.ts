import type { RedisClient } from "./redis-client.js";
import type { RegistrationReader } from "../adapter.js";
import { STORE_VERSION, type Keys } from "./keys.js";

interface StoredRegistration {
  v: number;
  at: string;
  fields: Record<string, string>;
}

function decode(raw: string | null): Record<string, string> | null {
  if (raw === null) return null;
  const parsed = JSON.parse(raw) as Partial<StoredRegistration>;
  // v1 is the only version so far; later versions map older records here.
  return parsed.fields ?? {};
}

/** XEP-0077 registrations of one adapter, keyed by bare JID. */
export class Registrations implements RegistrationReader {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    adapter: string,
  ) {
    this.key = keys.registrations(adapter);
  }

  async get(user: string): Promise<Record<string, string> | null> {
    return decode(await this.redis.hget(this.key, user));
  }

  async put(user: string, fields: Record<string, string>): Promise<void> {
    const record: StoredRegistration = { v: STORE_VERSION, at: new Date().toISOString(), fields };
    await this.redis.hset(this.key, user, JSON.stringify(record));
  }

  /** Removes the registration; true when there was one. */
  async remove(user: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, user)) > 0;
  }

  async list(): Promise<string[]> {
    return this.redis.hkeys(this.key);
  }

  /**
   * The registered users, `batch` at a time (HSCAN): memory is bounded by the batch, not by how many users
   * there are. A user registered or removed meanwhile may be seen or not; none is seen twice per batch.
   */
  async *scan(batch: number): AsyncGenerator<string[]> {
    let cursor = "0";
    do {
      const [next, flat] = await this.redis.hscan(this.key, cursor, "COUNT", batch);
      cursor = next;
      const users: string[] = [];
      for (let i = 0; i < flat.length; i += 2) users.push(flat[i]!);
      if (users.length > 0) yield users;
    } while (cursor !== "0");
  }

  async count(): Promise<number> {
    return this.redis.hlen(this.key);
  }
}
