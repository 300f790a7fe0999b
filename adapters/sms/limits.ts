/**
 * Cost control: per-user messages per hour and segments per day, counted in Redis (shared by every
 * instance). A refusal says which limit was hit and when it resets, and changes no counter.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { SendRefused } from "../../src/adapter.js";
import { LuaScript } from "../../src/store/lua.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

// KEYS: hour counter, day counter. ARGV: hour limit, day limit, segments, hour ttl, day ttl.
// Returns 0 when allowed (and counted), 1 when the hourly limit is hit, 2 for the daily one.
const TAKE = new LuaScript(`
local h = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
if h + 1 > tonumber(ARGV[1]) then return 1 end
if d + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return 2 end
redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('INCRBY', KEYS[2], ARGV[3]); redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 0`);

/**
 * A refusal by the per-user limits: which one was reached. A SendRefused: it may come after the hand-off
 * (the limits are taken in the same write as it), and the SMS was certainly not sent.
 */
export class RateLimitError extends SendRefused {
  constructor(
    readonly limit: "hour" | "day",
    text: string,
  ) {
    super("policy-violation", text);
  }
}

export interface Limits {
  messagesPerHour: number;
  segmentsPerDay: number;
}

function hhmm(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

export class RateLimiter {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    private readonly limits: Limits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one message of `segments` for the user, or throws policy-violation without counting. */
  async take(user: string, segments: number): Promise<void> {
    const now = this.now();
    const hour = Math.floor(now / HOUR_MS);
    const day = Math.floor(now / DAY_MS);
    const hourEnd = (hour + 1) * HOUR_MS;
    const dayEnd = (day + 1) * DAY_MS;
    const result = await TAKE.run(
      this.redis,
      [this.key("rate-hour", user, String(hour)), this.key("rate-day", user, String(day))],
      [
        this.limits.messagesPerHour,
        this.limits.segmentsPerDay,
        segments,
        hourEnd - now + 60_000,
        dayEnd - now + 60_000,
      ],
    );
    if (result === 1)
      throw new RateLimitError(
        "hour",
        `You have sent ${this.limits.messagesPerHour} SMS this hour, the most allowed; ` +
          `the limit resets at ${hhmm(hourEnd)} UTC.`,
      );
    if (result === 2)
      throw new RateLimitError(
        "day",
        `This message (${segments} segment(s)) would go over your daily budget of ${this.limits.segmentsPerDay} ` +
          `SMS segments; the budget resets at ${hhmm(dayEnd)} UTC.`,
      );
  }
}
