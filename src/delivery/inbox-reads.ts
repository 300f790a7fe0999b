/**
 * The deliverer's reads of a domain's inbox through the consumer group, on a connection of their own (a
 * blocking read ties one up): new entries (blocking), its own pending entries and those a dead instance left,
 * and the wait for replicas. It knows when one of them is under way: a command queued behind a blocking read
 * on that connection waits for it, so the deliverer sends its acknowledgements there only while it is free.
 */
import type { Logger } from "../log.js";
import { NotReplicatedError, type ReplicationSettings } from "../store/durable.js";
import { duplicateRedis, type RedisClient } from "../store/redis-client.js";
import { DELIVERY_GROUP } from "./inbox.js";

/** Stanzas sent between two barrier pings. */
export const DELIVERY_BATCH = 100;
/** How long one blocking read waits for new entries. */
export const READ_BLOCK_MS = 2_000;
/** Entries left pending this long by another (dead) instance are taken over. */
export const CLAIM_IDLE_MS = 60_000;
/** How much longer than its blocking time (or WAIT's) a read may go unanswered before it counts as failed. */
export const READ_REPLY_MARGIN_MS = 5_000;

/** A stream entry: its id and its fields. */
export type StreamEntry = [string, string[]];
type StreamReply = [string, StreamEntry[]][] | null;

export class InboxReads {
  /** The connection the reads use (acknowledgements may share it while it is free). */
  readonly connection: RedisClient;
  /** Reads under way that may block (see free). */
  private underway = 0;

  constructor(
    redis: RedisClient,
    private readonly stream: string,
    private readonly consumer: string,
    private readonly replication: ReplicationSettings,
    log: Logger,
  ) {
    // A reply that never comes (a connection replaced during a cluster's slot migration) must not stall the
    // loop: the read fails, and what it took is read again from the pending list.
    const commandTimeout = Math.max(READ_BLOCK_MS, replication.timeoutMs) + READ_REPLY_MARGIN_MS;
    this.connection = duplicateRedis(redis, { enableOfflineQueue: true, commandTimeout }, log, "deliverer");
  }

  /** No read that may block (a blocking read, a WAIT) is under way on the connection. */
  get free(): boolean {
    return this.underway === 0;
  }

  /** New entries, waiting up to READ_BLOCK_MS for them. */
  async next(): Promise<StreamEntry[]> {
    const reply = (await this.blocking(() =>
      this.connection.xreadgroup(
        "GROUP",
        DELIVERY_GROUP,
        this.consumer,
        "COUNT",
        DELIVERY_BATCH,
        "BLOCK",
        READ_BLOCK_MS,
        "STREAMS",
        this.stream,
        ">",
      ),
    )) as StreamReply;
    return reply?.[0]?.[1] ?? [];
  }

  /** Our own pending entries, then entries abandoned by dead instances (idle for CLAIM_IDLE_MS). */
  async pending(): Promise<StreamEntry[]> {
    const own = (await this.connection.xreadgroup(
      "GROUP",
      DELIVERY_GROUP,
      this.consumer,
      "COUNT",
      DELIVERY_BATCH,
      "STREAMS",
      this.stream,
      "0",
    )) as StreamReply;
    const entries = own?.[0]?.[1] ?? [];
    if (entries.length) return entries;
    const claimed = (await this.connection.xautoclaim(
      this.stream,
      DELIVERY_GROUP,
      this.consumer,
      CLAIM_IDLE_MS,
      "0",
      "COUNT",
      DELIVERY_BATCH,
    )) as [string, StreamEntry[]];
    return claimed[1] ?? [];
  }

  /**
   * With `redis.replication.minReplicas`, an entry is sent only once that many replicas have it: an entry the
   * primary took but no replica (its network was told "try later") would otherwise reach the user, vanish in a
   * failover, and come again when the network retries. The read that returned the batch is a write (the
   * group's pending list) made after the entries were added, so a WAIT on this connection covers them.
   */
  async replicated(): Promise<void> {
    const { minReplicas, timeoutMs } = this.replication;
    if (minReplicas === 0) return;
    // In the same pipeline as a read of the stream, WAIT goes to the node that holds it (on a cluster too).
    const [, waited] =
      (await this.blocking(() =>
        this.connection.pipeline().xlen(this.stream).wait(minReplicas, timeoutMs).exec(),
      )) ?? [];
    if (waited?.[0]) throw waited[0];
    const replicas = Number(waited?.[1]);
    if (replicas < minReplicas) throw new NotReplicatedError(replicas, minReplicas, timeoutMs);
  }

  close(): void {
    this.connection.disconnect();
  }

  private async blocking<T>(command: () => Promise<T>): Promise<T> {
    this.underway++;
    try {
      return await command();
    } finally {
      this.underway--;
    }
  }
}
