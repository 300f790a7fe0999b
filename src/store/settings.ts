import type { RedisClient } from "./redis-client.js";
import type { SettingsStore } from "../adapter.js";
import { STORE_VERSION, type Keys } from "./keys.js";

/** Per-user settings of one adapter (set through ad-hoc commands), as versioned JSON per bare JID. */
export class UserSettings implements SettingsStore {
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    adapter: string,
  ) {
    this.key = keys.settings(adapter);
  }

  async get(user: string): Promise<Record<string, string>> {
    const raw = await this.redis.hget(this.key, user);
    if (raw === null) return {};
    // v1 is the only version so far; later versions map older records here.
    return (JSON.parse(raw) as { values?: Record<string, string> }).values ?? {};
  }

  async put(user: string, values: Record<string, string>): Promise<void> {
    await this.redis.hset(this.key, user, JSON.stringify({ v: STORE_VERSION, values }));
  }

  async remove(user: string): Promise<void> {
    await this.redis.hdel(this.key, user);
  }
}
