/**
 * The read side of durable inbound delivery, one per component domain: reads the domain's stream through a
 * consumer group, sends each event as a stanza while the component stream is up, then pings the server as a
 * barrier (the server handles one stream in order: the pong means every stanza before it arrived) and only
 * then acknowledges and deletes the entries (while the next batch goes out). After a crash or a lost stream,
 * the entries still pending are sent again with the same stanza ids, so clients can drop the copies
 * (at-least-once delivery).
 *
 * One bad entry must not hold the domain down. An entry that cannot become a stanza (corrupt, or refused by
 * the event schema) goes to the dead-letter stream at once. A batch whose barrier fails after stanzas were
 * written (the server closed the stream, the ping timed out) is retried one entry per barrier, for as many
 * entries as the failed batches held, so the entry at fault is known; each such failure counts an attempt
 * (dead-letters.ts), and after `maxAttempts` the entry is set aside too, the admins are told and the rest
 * flows on. If Redis lost its data (a restart without persistence, a failover to an empty replica), the
 * consumer group is created again and the admins are told that what it held may be lost.
 */
import type { RedisClient } from "../store/redis-client.js";
import type { Logger } from "../log.js";
import type { Keys } from "../store/keys.js";
import type { ReplicationSettings } from "../store/durable.js";
import type { ComponentLink } from "../xmpp/link.js";
import { settledWithin } from "../waiting.js";
import { inboundStanza, type Element } from "../xmpp/stanzas.js";
import { Acknowledgements } from "./acknowledgements.js";
import { DEFAULT_MAX_ATTEMPTS, DeadLetters, type DeadLetterHook } from "./dead-letters.js";
import { checkInboundEvent } from "./event-schema.js";
import { DELIVERY_GROUP, decodeEntry, entryTime } from "./inbox.js";
import { DELIVERY_BATCH, InboxReads, READ_BLOCK_MS, type StreamEntry } from "./inbox-reads.js";

export { CLAIM_IDLE_MS, DELIVERY_BATCH, READ_BLOCK_MS, READ_REPLY_MARGIN_MS } from "./inbox-reads.js";

/** A batch this large means entries are waiting: the next one is sent before its pong (see sendBatch). */
export const PIPELINE_FROM = 10;
/** Batches sent and not yet confirmed by their pong, at most (see Deliverer.sendBatch). */
export const MAX_UNCONFIRMED_BATCHES = 4;
/**
 * How often to look for entries a dead instance left (a cheap XAUTOCLAIM of those idle for CLAIM_IDLE_MS):
 * they wait at most the sum.
 */
export const CLAIM_CHECK_MS = 10_000;
/** Pause after an unexpected failure (Redis down…) before trying again. */
export const RETRY_PAUSE_MS = 1_000;
/** Longest stop() waits for acknowledgements under way before it closes the reads' connection. */
export const STOP_ACK_WAIT_MS = 1_000;
/** Longest stop() waits for the delivery loop to reach a safe point (a blocking read lasts READ_BLOCK_MS). */
export const STOP_WAIT_MS = READ_BLOCK_MS + 1_000;
/** What the deliverer tells its owner. */
export interface DeliveryHooks {
  /** Once the server confirmed a batch: how long each entry waited since it was persisted. */
  delivered?(latencySeconds: number): void;
  /** An entry was moved to the dead-letter stream (`event` when it was a valid event). */
  deadLettered?: DeadLetterHook;
  /**
   * The domain's stream or its consumer group vanished while in use: Redis lost its data (a restart without
   * persistence, a failover to a server that had none), and with it whatever was waiting to be delivered.
   */
  storeLost?(): Promise<void>;
}

/** Redis answers NOGROUP when the stream or its consumer group is gone (its data was lost). */
function isNoGroup(err: unknown): boolean {
  return String((err as Error).message).startsWith("NOGROUP");
}

export class Deliverer {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly reads: InboxReads;
  private readonly stream: string;
  private readonly deadLetters: DeadLetters;
  private readonly log: Logger;
  /**
   * After batches failed: how many entries still go one per barrier (as many as the failed batches held), so
   * the entry at fault is found however deep in them it was.
   */
  private singleLeft = 0;
  private abort = new AbortController();
  /** Entries were adopted (adopt()): read the pending list first at the next turn. */
  private readOwnPending = false;
  /** Stanzas sent so far (for metrics and tests). */
  delivered = 0;
  /** Confirmed entries, acknowledged in Redis without holding up the next batch. */
  private readonly acks: Acknowledgements;
  /** Batches sent whose pong has not come yet (see sendBatch()). */
  private readonly unconfirmed = new Set<Promise<void>>();
  /** Why a batch sent before was not confirmed, until the loop takes note. */
  private unconfirmedError: Error | undefined;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    private readonly link: ComponentLink,
    private readonly consumer: string,
    log: Logger,
    private readonly hooks: DeliveryHooks = {},
    maxAttempts = DEFAULT_MAX_ATTEMPTS,
    /** With replicas required, nothing is sent before they have it (see InboxReads.replicated). */
    replication: ReplicationSettings = { minReplicas: 0, timeoutMs: 0 },
  ) {
    this.stream = keys.inbox(link.domain);
    this.log = log.child({ domain: link.domain, part: "deliverer" });
    this.deadLetters = new DeadLetters(redis, keys, link.domain, this.log, hooks.deadLettered, maxAttempts);
    this.acks = new Acknowledgements(redis, [this.stream, this.deadLetters.attempts], this.log);
    this.reads = new InboxReads(redis, this.stream, consumer, replication, this.log);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    // Acknowledgements may travel on the reads' connection (see confirm()): let those under way be answered
    // first, or the next start would send their entries again.
    await this.acks.settled(STOP_ACK_WAIT_MS);
    this.reads.close();
    // A read queued while that connection was reconnecting (Redis just restarted) is never settled by
    // disconnect(): do not let it hold up the stop. Entries not yet acknowledged stay pending and are sent
    // again by the next deliverer, so nothing is lost.
    const stopped = await settledWithin(
      this.loop?.then(() => this.settled()) ?? Promise.resolve(),
      STOP_WAIT_MS,
    );
    if (!stopped)
      this.log.warn({ waitedMs: STOP_WAIT_MS }, "stopped without waiting for a pending Redis read");
  }

  /**
   * Claims the entries `consumer` (a dead instance) read and did not confirm, without waiting CLAIM_IDLE_MS,
   * and sends them at the next turn (with their stanza ids, so clients drop what it had already sent).
   */
  async adopt(consumer: string): Promise<number> {
    if (consumer === this.consumer) return 0;
    let claimed = 0;
    for (;;) {
      const pending = (await this.redis.xpending(
        this.stream,
        DELIVERY_GROUP,
        "-",
        "+",
        DELIVERY_BATCH,
        consumer,
      )) as [string, string, number, number][];
      if (pending.length === 0) break;
      const ids = pending.map(([id]) => id);
      await this.redis.call("XCLAIM", this.stream, DELIVERY_GROUP, this.consumer, "0", ...ids, "JUSTID");
      claimed += ids.length;
    }
    if (claimed > 0) this.readOwnPending = true;
    return claimed;
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup("CREATE", this.stream, DELIVERY_GROUP, "0", "MKSTREAM");
    } catch (err) {
      if (!String((err as Error).message).includes("BUSYGROUP")) throw err;
    }
  }

  private async run(): Promise<void> {
    let groupReady = false;
    let pendingFirst = true;
    let lastClaim = Date.now();
    while (this.running) {
      try {
        if (this.readOwnPending) {
          this.readOwnPending = false;
          pendingFirst = true; // entries adopted from a dead instance
        }
        if (Date.now() - lastClaim > CLAIM_CHECK_MS) {
          pendingFirst = true; // look for entries a dead instance left behind
          lastClaim = Date.now();
        }
        if (!this.link.isOnline) {
          await this.link.waitOnline(this.abort.signal);
          pendingFirst = true; // resend what was in flight when the stream dropped
        }
        if (!groupReady) {
          await this.ensureGroup();
          groupReady = true;
        }
        await this.throwIfUnconfirmed();
        const batch = pendingFirst ? await this.readPending() : await this.reads.next();
        // What was read stays pending under our name when a batch before it failed: read again from there.
        await this.throwIfUnconfirmed();
        if (batch.length === 0) {
          pendingFirst = false;
          continue;
        }
        await this.reads.replicated();
        // One by one, the rest of what was read stays pending under our name: read it again from there.
        if ((await this.sendBatch(batch)) < batch.length) pendingFirst = true;
      } catch (err) {
        if (!this.running) break;
        pendingFirst = true;
        if (isNoGroup(err)) {
          // The stream or its group vanished with Redis's data: create it again, then go on. What it held
          // is gone: that is for the operators to know, not a warning among others.
          if (groupReady) {
            this.log.error(
              "the delivery queue is gone from Redis (it lost its data): what it held may be lost; creating it again",
            );
            await this.hooks
              .storeLost?.()
              .catch((e: unknown) =>
                this.log.warn({ err: (e as Error).message }, "could not report the lost delivery queue"),
              );
          }
          groupReady = false;
          continue;
        }
        this.log.warn({ err: (err as Error).message }, "delivery paused");
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  /** Our own pending entries, then those dead instances left (see InboxReads.pending). */
  private async readPending(): Promise<StreamEntry[]> {
    // Entries sent and not yet confirmed, or whose acknowledgement is under way, would be read back.
    await this.settled();
    return this.reads.pending();
  }

  /**
   * Sends a batch (its first entry only, one by one) with its barrier; returns how many entries it took.
   * Batches of a backlog are pipelined: the next one goes out while the server still works through this
   * one, up to MAX_UNCONFIRMED_BATCHES, and each is confirmed by its own pong, in order (confirm()). Waiting
   * for each pong would leave the server idle between batches, and a backlog would drain at one batch per
   * round trip through a busy server. One by one (looking for an entry at fault), nothing else is sent until
   * the entry is confirmed.
   */
  private async sendBatch(batch: StreamEntry[]): Promise<number> {
    const generation = this.link.generation;
    const single = this.singleLeft > 0;
    const taken = single ? batch.slice(0, 1) : batch;
    const done: string[] = [];
    const again = new Set<string>();
    const stanzas: Element[] = [];
    for (const [entryId, fields] of taken) {
      if (this.acks.wasConfirmed(entryId)) {
        // Sent and confirmed before, but its acknowledgement did not stay in Redis: acknowledge it again.
        again.add(entryId);
        done.push(entryId);
        continue;
      }
      const stanza = await this.stanzaOf(entryId, fields);
      if (!stanza) continue; // set aside
      stanzas.push(stanza);
      done.push(entryId);
    }
    if (stanzas.length === 0) {
      if (done.length > 0) this.confirm(done, again, single);
      return taken.length;
    }
    // The whole batch and the barrier after it in one write: confirmed only by a pong on the connection that
    // carried the stanzas.
    let pong: Promise<void> = Promise.resolve();
    const writes = this.link.corked(() => {
      const sent = this.link.sendAll(stanzas, generation);
      pong = this.link.ping(undefined, generation);
      return sent;
    });
    pong.catch(() => undefined); // awaited below once the stanzas are written; a failed write comes first
    await writes;
    const confirmation = pong.then(
      () => this.confirm(done, again, single),
      async (err: unknown) => {
        // Written, not confirmed. One by one, this entry failed: count it. In a batch the entry at fault is
        // unknown: go one by one (every batch still unconfirmed fails the same way and is read again).
        if (single && done[0] !== undefined) await this.deadLetters.failed(done[0]);
        else this.singleLeft += done.length;
        throw err;
      },
    );
    if (single) {
      await confirmation;
      return taken.length;
    }
    const tracked: Promise<void> = confirmation
      .catch((err: unknown) => {
        this.unconfirmedError ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => this.unconfirmed.delete(tracked));
    this.unconfirmed.add(tracked);
    // A batch of PIPELINE_FROM or more means entries are waiting: the next one goes out while the server works
    // through this one. A smaller one means the stream is caught up: wait for the pong, so that what arrives
    // meanwhile leaves as one batch (fewer round trips per message while traffic is light).
    if (taken.length < PIPELINE_FROM) await tracked;
    else if (this.unconfirmed.size >= MAX_UNCONFIRMED_BATCHES) await Promise.race(this.unconfirmed);
    return taken.length;
  }

  /** The server confirmed these entries (`again`: confirmed before): count them and acknowledge them. */
  private confirm(done: string[], again: Set<string>, single: boolean): void {
    if (single) this.singleLeft = Math.max(0, this.singleLeft - 1);
    this.delivered += done.length - again.size;
    const confirmed = Date.now();
    for (const entryId of done) {
      if (again.has(entryId)) continue;
      const stored = entryTime(entryId);
      if (stored !== undefined) this.hooks.delivered?.(Math.max(0, (confirmed - stored) / 1000));
    }
    // While traffic is light the loop reads next, on the reads' connection: the acknowledgement goes first on
    // it, in the same write as the read (one system call and one wake-up of Redis less per batch). Behind a
    // read under way (a blocking one lasts up to READ_BLOCK_MS), or once stopping (that connection is closed
    // first), it takes the shared connection.
    this.acks.acknowledge(done, this.running && this.reads.free ? this.reads.connection : this.redis);
  }

  /**
   * Waits for the batches under way to be confirmed (or to fail) and for their acknowledgements: before
   * reading the pending list (it would return them), and at stop.
   */
  private async settled(): Promise<void> {
    await Promise.all(this.unconfirmed);
    await this.acks.settled();
  }

  /** A batch sent before failed to be confirmed: after the others settled, throws why (the loop pauses). */
  private async throwIfUnconfirmed(): Promise<void> {
    if (this.unconfirmedError === undefined) return;
    await this.settled();
    const err = this.unconfirmedError;
    this.unconfirmedError = undefined;
    throw err;
  }

  /** The stanza for an entry; an entry that cannot become one is set aside at once (undefined). */
  private async stanzaOf(entryId: string, fields: string[]): Promise<Element | undefined> {
    // An entry deleted while pending is read back without fields.
    const raw = decodeEntry(Array.isArray(fields) ? fields : []);
    if (!raw) {
      await this.deadLetters.setAside(entryId, fields, undefined, "corrupt entry");
      return undefined;
    }
    try {
      return inboundStanza(checkInboundEvent(raw));
    } catch (err) {
      await this.deadLetters.setAside(entryId, fields, undefined, (err as Error).message);
      return undefined;
    }
  }
}
