/**
 * Which channels each user is in, kept in Redis so that a gateway restart rejoins them: one hash field per
 * (bare JID, IRC server) holding the nick and, per channel, the user's resources in it.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import type { Member } from "./connections.js";

/** Version of the stored value; a later release reads older ones. */
const VERSION = 1;

export interface JoinedRecord {
  user: string;
  server: string;
  nick: string;
  /** Lowercased channel → full JID → how it joined. */
  channels: Map<string, Map<string, Member>>;
}

interface Stored {
  v: number;
  nick: string;
  channels: Record<string, Record<string, Member>>;
}

export class JoinedStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
  ) {}

  private static field(user: string, server: string): string {
    return `${user}\n${server}`;
  }

  /** Records the user's channels on a server (none: forgets the entry). */
  async save(record: JoinedRecord): Promise<void> {
    const field = JoinedStore.field(record.user, record.server);
    if (record.channels.size === 0) {
      await this.redis.hdel(this.key("joined"), field);
      return;
    }
    const value: Stored = {
      v: VERSION,
      nick: record.nick,
      channels: Object.fromEntries(
        [...record.channels].map(([channel, members]) => [channel, Object.fromEntries(members)]),
      ),
    };
    await this.redis.hset(this.key("joined"), field, JSON.stringify(value));
  }

  async remove(user: string, server: string): Promise<void> {
    await this.redis.hdel(this.key("joined"), JoinedStore.field(user, server));
  }

  /** Every recorded (user, server); entries that cannot be read are skipped. */
  async all(): Promise<JoinedRecord[]> {
    const entries = await this.redis.hgetall(this.key("joined"));
    const records: JoinedRecord[] = [];
    for (const [field, raw] of Object.entries(entries)) {
      const [user, server] = field.split("\n");
      if (user === undefined || server === undefined) continue;
      try {
        const stored = JSON.parse(raw) as Stored;
        if (typeof stored.nick !== "string" || typeof stored.channels !== "object") continue;
        records.push({
          user,
          server,
          nick: stored.nick,
          channels: new Map(Object.entries(stored.channels).map(([c, m]) => [c, new Map(Object.entries(m))])),
        });
      } catch {
        continue;
      }
    }
    return records;
  }
}
