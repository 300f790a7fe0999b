/**
 * A Lua script sent by its SHA1 (EVALSHA). Sent with EVAL, a script's whole source crosses the connection with
 * every call: for the outbound ledger and the inbound queue, that was most of the bytes the gateway wrote to
 * Redis per message. By its digest, the source goes once per Redis server (after a restart or a failover its
 * script cache is empty: NOSCRIPT, and the call is made once with EVAL, which caches it again). A script that
 * answers NOSCRIPT did not run, so sending it again cannot apply it twice.
 */
import { createHash } from "node:crypto";
import type { ChainableCommander } from "ioredis";
import type { RedisClient } from "./redis-client.js";

export type LuaArg = string | number;

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith("NOSCRIPT");
}

export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** Runs the script with `keys` as KEYS and `args` as ARGV. */
  async run(redis: RedisClient, keys: readonly LuaArg[], args: readonly LuaArg[] = []): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }

  /** Queues the script in a pipeline or transaction by its digest (see run() for a NOSCRIPT answer). */
  queue(
    chain: ChainableCommander,
    keys: readonly LuaArg[],
    args: readonly LuaArg[] = [],
  ): ChainableCommander {
    return chain.evalsha(this.sha, keys.length, ...keys, ...args);
  }

  /** Queues the script with its source (EVAL): after a NOSCRIPT answer to queue(). */
  queueSource(
    chain: ChainableCommander,
    keys: readonly LuaArg[],
    args: readonly LuaArg[] = [],
  ): ChainableCommander {
    return chain.eval(this.source, keys.length, ...keys, ...args);
  }
}
