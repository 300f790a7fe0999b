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

/** A new connection to `url` with its errors logged (see watchRedisErrors). */
export function createRedis(url: string, options: RedisOptions, log: Logger, name: string): Redis {
  return watchRedisErrors(new Redis(url, options), log, name);
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
