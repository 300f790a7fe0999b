/**
 * Writes that a promise rests on: an inbound event before the network is told "taken" (HTTP 200, SMTP 250, an
 * IRC line read), and an outbound claim before the message leaves. With `redis.replication.minReplicas` > 0
 * such a write counts as done only when Redis's WAIT says that many replicas have it, so a failover (Sentinel
 * promoting a replica) cannot lose what was acknowledged: otherwise the caller answers "try later".
 *
 * WAIT covers the writes of the connection it is sent on and blocks that connection until the replicas
 * answer, so these writes have their own connection (not the one every other command shares), each followed
 * by WAIT in the same pipeline. Concurrent writers share its round trips: one WAIT confirms every write sent
 * before it. The pipeline also keeps a WAIT with its write across a reconnect (a failover): ioredis sends an
 * unanswered pipeline again whole, and fails the rest of one whose first replies came, so a WAIT never
 * reaches a new primary alone, where it would confirm a write that was lost with the old one
 * (test/e2e/redis-sentinel.test.ts).
 */
import type { RedisClient } from "./redis-client.js";
import type { Logger } from "../log.js";
import { isNoScript, type LuaArg, type LuaScript } from "./lua.js";
import { duplicateRedis } from "./redis-client.js";

export interface ReplicationSettings {
  /** Replicas that must have a write before it counts; 0 = the primary alone (no WAIT). */
  minReplicas: number;
  /** How long WAIT may take before the write is reported as not replicated. */
  timeoutMs: number;
}

/** The write reached the primary but not enough replicas in time: do not acknowledge it (try later). */
export class NotReplicatedError extends Error {
  constructor(
    readonly replicas: number,
    readonly wanted: number,
    timeoutMs: number,
  ) {
    super(
      `The store confirmed the write on ${replicas} of the ${wanted} replicas required within ${timeoutMs} ms`,
    );
    this.name = "NotReplicatedError";
  }
}

export class DurableWrites {
  /** The connection of its own (opened at the first replicated write). */
  private own: RedisClient | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly settings: ReplicationSettings,
    private readonly log: Logger,
  ) {}

  /**
   * Runs a Lua script that writes (EVAL); resolves with its result once the write is on the primary and, when
   * replicas are required, on enough of them. A script that finds its work already done must still write
   * (e.g. refresh a TTL) so that WAIT covers the earlier write it relies on.
   */
  async eval(script: LuaScript, keys: readonly LuaArg[], args: readonly LuaArg[]): Promise<unknown> {
    const { minReplicas, timeoutMs } = this.settings;
    if (minReplicas === 0) return script.run(this.redis, keys, args);
    // Commands queue while it (re)connects, and fail after one retry like every other command.
    this.own ??= duplicateRedis(
      this.redis,
      { enableOfflineQueue: true, lazyConnect: false },
      this.log,
      "durable",
    );
    const own = this.own;
    const send = (withSource: boolean) => {
      const pipeline = own.pipeline();
      const queued = withSource
        ? script.queueSource(pipeline, keys, args)
        : script.queue(pipeline, keys, args);
      return queued.wait(minReplicas, timeoutMs).exec();
    };
    let replies = await send(false);
    // Not run (the server's script cache is empty): once more with the source.
    if (isNoScript(replies?.[0]?.[0])) replies = await send(true);
    const [written, waited] = replies ?? [];
    if (!written || !waited) throw new Error("The store answered no reply to a write");
    if (written[0]) throw written[0];
    if (waited[0]) throw waited[0];
    const replicas = Number(waited[1]);
    if (replicas < minReplicas) throw new NotReplicatedError(replicas, minReplicas, timeoutMs);
    return written[1];
  }

  /** Closes the connection of its own, if it has one. */
  disconnect(): void {
    this.own?.disconnect();
    this.own = undefined;
  }
}
