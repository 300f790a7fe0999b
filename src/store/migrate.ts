/**
 * Carries keys written before hash tags (src/store/keys.ts) over to their new names, once, before the
 * gateway serves. RENAME keeps what matters: a stream's consumer group and its pending entries, a key's TTL.
 *
 * `schema` records the layout the data is in. Instances starting together: one holds `schema-lock` (a lease
 * renewed as it goes) and renames; the others wait for `schema` to be written, or take the lock over if its
 * holder died (renaming again is harmless: a key already renamed is no longer found under its old name).
 * A key whose new name is already taken is left as it is and logged, never overwritten.
 *
 * Instances of a release before tags must be stopped first: what they write afterwards stays under the old
 * names, which this release does not read.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Cluster } from "ioredis";
import type { Logger } from "../log.js";
import type { Keys } from "./keys.js";
import { LEASE_ACQUIRE, LEASE_RELEASE } from "./lease-scripts.js";
import { scanKeys, type RedisClient } from "./redis-client.js";

/** The key layout this release reads: 2 = hash tags. (1, never written, was the layout before them.) */
export const KEY_SCHEMA = 2;
/** How long the renaming instance's lock lasts unrenewed (it renews it after every SCAN batch). */
export const SCHEMA_LOCK_MS = 30_000;
/** How often a waiting instance looks whether the renaming is done. */
const SCHEMA_WAIT_MS = 200;

export class KeyMigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyMigrationError";
  }
}

/** Brings the store to KEY_SCHEMA; resolves when it is there. How many keys this call renamed. */
export async function migrateKeys(redis: RedisClient, keys: Keys, log: Logger): Promise<number> {
  const token = randomUUID();
  for (;;) {
    const schema = Number((await redis.get(keys.schema())) ?? "1");
    if (schema > KEY_SCHEMA)
      throw new KeyMigrationError(
        `The data in Redis is in key layout ${schema}, newer than this release reads (${KEY_SCHEMA}); ` +
          "run the newer release",
      );
    if (schema === KEY_SCHEMA) return 0;
    if ((await redis.eval(LEASE_ACQUIRE, 1, keys.schemaLock(), token, SCHEMA_LOCK_MS)) === 1) break;
    await sleep(SCHEMA_WAIT_MS);
  }
  try {
    const renamed = await renameLegacyKeys(redis, keys, log, async () => {
      if ((await redis.eval(LEASE_ACQUIRE, 1, keys.schemaLock(), token, SCHEMA_LOCK_MS)) !== 1)
        throw new KeyMigrationError("Another instance took over the key migration; start again");
    });
    await redis.set(keys.schema(), String(KEY_SCHEMA));
    if (renamed > 0) log.info({ renamed, schema: KEY_SCHEMA }, "keys carried over to the hash-tagged layout");
    return renamed;
  } finally {
    await redis.eval(LEASE_RELEASE, 1, keys.schemaLock(), token).catch(() => undefined);
  }
}

async function renameLegacyKeys(
  redis: RedisClient,
  keys: Keys,
  log: Logger,
  stillOurs: () => Promise<void>,
): Promise<number> {
  let renamed = 0;
  for await (const batch of scanKeys(redis, keys.all(), 500)) {
    await stillOurs();
    for (const key of batch) {
      const target = keys.legacyKeyTarget(key);
      if (target === undefined) continue;
      let done: number;
      try {
        done = await redis.renamenx(key, target);
      } catch (err) {
        // A cluster cannot rename across slots; data from a single Redis moves to a cluster with its
        // new names (migrate on the single Redis first, then copy the keys over).
        if (redis instanceof Cluster && /CROSSSLOT/.test((err as Error).message))
          throw new KeyMigrationError(
            `Key ${key} is in the layout from before hash tags, which a Redis Cluster cannot rename; ` +
              "start this release once on the single Redis, then move the data",
            { cause: err },
          );
        throw err;
      }
      if (done === 1) renamed++;
      else log.warn({ key, target }, "key not carried over: its new name is already taken");
    }
  }
  return renamed;
}
