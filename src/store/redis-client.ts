/**
 * Every Redis connection the gateway opens goes through here, so each one has an error handler that logs
 * through pino. Without one, ioredis prints "[ioredis] Unhandled error event" blocks to stderr among the JSON
 * lines; with one per reconnect attempt, an outage would flood the log, so each client logs at most one line
 * per REDIS_ERROR_LOG_INTERVAL_MS and says how many it left out.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../log.js";

/** At most one "redis connection error" line per client in this interval. */
export const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

/** Logs `client`'s errors through `log` (rate-limited); returns the client. */
export function watchRedisErrors<T extends Redis>(client: T, log: Logger, name: string): T {
  let last = 0;
  let suppressed = 0;
  client.on("error", (err: Error) => {
    const now = Date.now();
    if (now - last < REDIS_ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    log.warn({ client: name, err: err.message, suppressed }, "redis connection error");
    last = now;
    suppressed = 0;
  });
  return client;
}

/** Where the gateway's Redis is: one server by URL, or the primary the sentinels name. */
export interface RedisTarget {
  url: string;
  sentinels?: { host: string; port: number }[] | undefined;
  masterName?: string | undefined;
  sentinelPassword?: string | undefined;
}

/**
 * A primary demoted by a failover answers writes with READONLY until the client reconnects; reconnecting
 * (and resending the command) reaches the new primary, which the sentinels name.
 */
export function reconnectOnReadonly(err: Error): 2 | false {
  return err.message.startsWith("READONLY") ? 2 : false;
}

/** A new connection to `target` with its errors logged (see watchRedisErrors). */
export function createRedis(target: RedisTarget, options: RedisOptions, log: Logger, name: string): Redis {
  const common: RedisOptions = { reconnectOnError: reconnectOnReadonly, ...options };
  const client = target.sentinels
    ? new Redis(target.url, {
        ...common,
        sentinels: target.sentinels,
        name: target.masterName,
        role: "master",
        sentinelPassword: target.sentinelPassword,
      })
    : new Redis(target.url, common);
  return watchRedisErrors(client, log, name);
}

/** A second connection with the same settings as `redis` (e.g. for blocking reads), errors logged. */
export function duplicateRedis(
  redis: Redis,
  options: Partial<RedisOptions>,
  log: Logger,
  name: string,
): Redis {
  return watchRedisErrors(redis.duplicate(options), log, name);
}
