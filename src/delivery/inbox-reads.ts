/**
 * The deliverer's reads of a domain's inbox through the consumer group, on two connections of their own: new
 * entries on one (a blocking read ties it up for as long as nothing comes, while the entries this instance
 * writes reach its deliverer directly, see Inbox.attach), its own pending entries and those a dead instance
 * left on the other, each followed by the wait for replicas on its connection. The second is known to be free
 * or not (a WAIT may block it): the deliverer sends its acknowledgements there while it is.
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
  /** The connection of the reads of pending entries (acknowledgements may share it while it is free). */
  readonly connection: RedisClient;
  /** The connection of the blocking reads of new entries. */
  private readonly blockingConnection: RedisClient;
  /** Commands under way on `connection` that may block (see free). */
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
    const options = { enableOfflineQueue: true, commandTimeout };
    this.connection = duplicateRedis(redis, options, log, "deliverer");
    this.blockingConnection = duplicateRedis(redis, options, log, "deliverer-blocking");
  }

  /** No command that may block (a WAIT) is under way on `connection`. */
  get free(): boolean {
    return this.underway === 0;
  }

  /**
   * New entries, waiting up to READ_BLOCK_MS for them; with replicas required, returned once they have them
   * (see replicated).
   */
  async next(): Promise<StreamEntry[]> {
    const reply = (await this.blockingConnection.xreadgroup(
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
    )) as StreamReply;
    const entries = reply?.[0]?.[1] ?? [];
    if (entries.length) await this.replicated(this.blockingConnection);
    return entries;
  }

  /**
   * Our own pending entries, then entries abandoned by dead instances (idle for CLAIM_IDLE_MS); with replicas
   * required, returned once they have them (see replicated).
   */
  async pending(): Promise<StreamEntry[]> {
    const entries = await this.pendingEntries();
    if (entries.length) await this.blocking(() => this.replicated(this.connection));
    return entries;
  }

  private async pendingEntries(): Promise<StreamEntry[]> {
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
   * group's pending list) made after the entries were added, so a WAIT on the connection of the read covers
   * them. (Entries handed over by the write that added them need none: that write waited, see Inbox.)
   */
  private async replicated(via: RedisClient): Promise<void> {
    const { minReplicas, timeoutMs } = this.replication;
    if (minReplicas === 0) return;
    // In the same pipeline as a read of the stream, WAIT goes to the node that holds it (on a cluster too).
    const [, waited] = (await via.pipeline().xlen(this.stream).wait(minReplicas, timeoutMs).exec()) ?? [];
    if (waited?.[0]) throw waited[0];
    const replicas = Number(waited?.[1]);
    if (replicas < minReplicas) throw new NotReplicatedError(replicas, minReplicas, timeoutMs);
  }

  close(): void {
    this.connection.disconnect();
    this.blockingConnection.disconnect();
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
