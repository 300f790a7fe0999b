/**
 * Every Redis connection the gateway opens goes through here, so each one has an error handler that logs
 * through pino. Without one, ioredis prints "[ioredis] Unhandled error event" blocks to stderr among the JSON
 * lines; with one per reconnect attempt, an outage would flood the log, so each client logs at most one line
 * per REDIS_ERROR_LOG_INTERVAL_MS and says how many it left out.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster, Redis, type ChainableCommander, type RedisOptions } from "ioredis";
import type { Logger } from "../log.js";

/**
 * The gateway's connection to its store: one Redis (alone or behind sentinels), or a Redis Cluster. Both
 * take the same commands; what differs (SCAN per master, a duplicate connection) is handled here.
 */
export type RedisClient = Redis | Cluster;

/** At most one "redis connection error" line per client in this interval. */
export const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

/** Logs `client`'s errors through `log` (rate-limited); returns the client. */
export function watchRedisErrors<T extends RedisClient>(client: T, log: Logger, name: string): T {
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

/** Where the gateway's Redis is: one server by URL, the primary the sentinels name, or a cluster. */
export interface RedisTarget {
  url?: string | undefined;
  /** Seed nodes of a Redis Cluster ("host:port"); the client learns the other nodes from them. */
  cluster?: string[] | undefined;
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

/** Where a single Redis is when the config names none. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/**
 * During a slot migration (resharding), a script or transaction whose keys are split between the two nodes
 * is answered TRYAGAIN, a key already moved ASK, and a node that gave the slot away MOVED: the client tries
 * again every CLUSTER_RETRY_DELAY_MS, up to CLUSTER_MAX_REDIRECTIONS times (about 30 s in all), before the
 * command fails (and the caller answers "try later"). A slot holding a day of outbound markers takes
 * seconds to move, a few keys at a time; the budget covers that with room to spare.
 */
export const CLUSTER_RETRY_DELAY_MS = 100;
export const CLUSTER_MAX_REDIRECTIONS = 300;

/** "host:port" → the address ioredis takes (the config schema has checked the form). */
function clusterNode(seed: string): { host: string; port: number } {
  const at = seed.lastIndexOf(":");
  return { host: seed.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(seed.slice(at + 1)) };
}

/** A new connection to `target` with its errors logged (see watchRedisErrors). */
export function createRedis(
  target: RedisTarget,
  options: RedisOptions,
  log: Logger,
  name: string,
): RedisClient {
  if (target.cluster) {
    const { enableOfflineQueue, lazyConnect, ...redisOptions } = options;
    const cluster = new Cluster(target.cluster.map(clusterNode), {
      redisOptions,
      enableOfflineQueue,
      lazyConnect,
      // Writes go to masters; the gateway reads what it has just written, so it reads there too.
      scaleReads: "master",
      retryDelayOnTryAgain: CLUSTER_RETRY_DELAY_MS,
      retryDelayOnMoved: CLUSTER_RETRY_DELAY_MS,
      maxRedirections: CLUSTER_MAX_REDIRECTIONS,
    });
    return watchRedisErrors(cluster, log, name);
  }
  const url = target.url ?? DEFAULT_REDIS_URL;
  const common: RedisOptions = { reconnectOnError: reconnectOnReadonly, ...options };
  const client = target.sentinels
    ? new Redis(url, {
        ...common,
        sentinels: target.sentinels,
        name: target.masterName,
        role: "master",
        sentinelPassword: target.sentinelPassword,
      })
    : new Redis(url, common);
  return watchRedisErrors(client, log, name);
}

/** A second connection with the same settings as `redis` (e.g. for blocking reads), errors logged. */
export function duplicateRedis(
  redis: RedisClient,
  options: { enableOfflineQueue?: boolean; lazyConnect?: boolean; commandTimeout?: number },
  log: Logger,
  name: string,
): RedisClient {
  let copy: RedisClient;
  if (redis instanceof Cluster) {
    // A cluster's commands run on its node connections: a timeout goes to their options.
    const { commandTimeout, ...clusterOptions } = options;
    const redisOptions = { ...redis.options.redisOptions, ...(commandTimeout ? { commandTimeout } : {}) };
    copy = redis.duplicate([], { ...clusterOptions, redisOptions });
  } else copy = redis.duplicate(options);
  return watchRedisErrors(copy, log, name);
}

/**
 * Every key matching `pattern`, in batches: SCAN on a single Redis, SCAN on each master of a cluster (a
 * cluster's SCAN reaches one node only).
 */
export async function* scanKeys(redis: RedisClient, pattern: string, count = 100): AsyncGenerator<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes("master") : [redis];
  for (const node of nodes) {
    let cursor = "0";
    do {
      const [next, found] = await node.scan(cursor, "MATCH", pattern, "COUNT", count);
      cursor = next;
      if (found.length) yield found;
    } while (cursor !== "0");
  }
}

/** Whether a command or transaction was refused because a slot migration splits its keys (TRYAGAIN). */
export function isTryAgain(err: unknown): boolean {
  const e = err as (Error & { previousErrors?: Error[] }) | undefined;
  if (!(e instanceof Error)) return false;
  return (
    e.message.startsWith("TRYAGAIN") || (e.previousErrors ?? []).some((p) => p.message.startsWith("TRYAGAIN"))
  );
}

/**
 * Runs the transaction `build` makes (MULTI … EXEC). A transaction refused with TRYAGAIN (its keys are split
 * between two nodes for a moment, during a slot migration) did nothing, so it is sent again, like a single
 * command (see CLUSTER_RETRY_DELAY_MS), rather than failing.
 */
export async function execTransaction(
  build: () => ChainableCommander,
): ReturnType<ChainableCommander["exec"]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await build().exec();
    } catch (err) {
      if (!isTryAgain(err) || attempt >= CLUSTER_MAX_REDIRECTIONS) throw err;
      await sleep(CLUSTER_RETRY_DELAY_MS);
    }
  }
}
