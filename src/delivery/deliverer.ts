/**
 * The read side of durable inbound delivery, one per component domain: takes the domain's entries through a
 * consumer group, sends each event as a stanza while the component stream is up, then pings the server as a
 * barrier (the server handles one stream in order: the pong means every stanza before it arrived) and only
 * then acknowledges and deletes the entries (while the next batch goes out). After a crash or a lost stream,
 * the entries still pending are sent again with the same stanza ids, so clients can drop the copies
 * (at-least-once delivery).
 *
 * The entries this instance writes are claimed for it by the write itself and handed over in its answer (see
 * Inbox.attach): no read of the stream, nor its wake-up, between a webhook and its stanza. The blocking read
 * of the stream stays for the rest (entries other instances wrote while they could not send them, or this
 * one while it was behind), and the pending list for what was claimed and not confirmed. Every entry handed
 * over is pending under this consumer's name first, so the pending list is the truth: whenever the loop reads
 * it, what it was handed before is dropped and read from there.
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
import { compareEntryIds, DELIVERY_GROUP, decodeEntry, entryTime, type DirectReader } from "./inbox.js";
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
/**
 * Entries handed over and not yet sent beyond which writes stop claiming them (they are then read from the
 * stream when the deliverer catches up): as many as the batches it keeps unconfirmed.
 */
export const MAX_HANDED = DELIVERY_BATCH * MAX_UNCONFIRMED_BATCHES;
/**
 * Entries handed over and not yet sent, at most: writes sent before it stopped accepting still claim some.
 * Beyond, they are left in the pending list and read from there.
 */
export const HANDED_LIMIT = 4 * MAX_HANDED;
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

/** Entries in the order of the stream. */
const byEntryId = ([a]: StreamEntry, [b]: StreamEntry): number => compareEntryIds(a, b);

export class Deliverer implements DirectReader {
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
  /**
   * Entries wait in the pending list that the loop must read (adopted from a dead instance, claimed by a
   * write that failed, more than it may hold): read it first at the next turn.
   */
  private readOwnPending = false;
  /** The loop reads the pending list until it finds it empty (at start, after a failure…). */
  private behind = true;
  /** Entries pending under our name and not sent yet, in the order of the stream (see take()). */
  private handed: StreamEntry[] = [];
  /** The blocking read of new entries under way, if any (its entries join `handed`). */
  private reading: Promise<void> | undefined;
  /** Why that read failed, until the loop takes note. */
  private readFailure: Error | undefined;
  /** Wakes the loop waiting for entries. */
  private wake: (() => void) | undefined;
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
    /** Its name in the consumer group (the instance's id). */
    readonly consumer: string,
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

  /** Whether writes should claim entries for it now (see DirectReader). */
  get accepting(): boolean {
    return (
      this.running &&
      this.link.isOnline &&
      !this.behind &&
      !this.readOwnPending &&
      this.singleLeft === 0 &&
      this.handed.length < MAX_HANDED
    );
  }

  /** Entries a write claimed for us: sent in their turn. */
  take(entries: StreamEntry[]): void {
    // Stopped, they stay pending under our name: read by the next start, or taken over by another instance.
    if (!this.running) return;
    if (this.handed.length + entries.length > HANDED_LIMIT) this.missed();
    else this.hand(entries);
  }

  /** Entries wait in our pending list that were not handed over (a write that claimed them failed…). */
  missed(): void {
    this.readOwnPending = true;
    this.wakeLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.wakeLoop();
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
    if (claimed > 0) this.missed();
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
    let lastClaim = Date.now();
    this.behind = true;
    while (this.running) {
      try {
        if (this.readOwnPending) {
          this.readOwnPending = false;
          this.behind = true;
        }
        if (Date.now() - lastClaim > CLAIM_CHECK_MS) {
          this.behind = true; // look for entries a dead instance left behind
          lastClaim = Date.now();
        }
        if (!this.link.isOnline) {
          await this.link.waitOnline(this.abort.signal);
          this.behind = true; // resend what was in flight when the stream dropped
        }
        if (!groupReady) {
          await this.ensureGroup();
          groupReady = true;
        }
        await this.throwIfUnconfirmed();
        const batch = this.behind ? await this.readPending() : await this.nextNew();
        // What was read stays pending under our name when a batch before it failed: read again from there.
        await this.throwIfUnconfirmed();
        if (batch.length === 0) {
          this.behind = false;
          continue;
        }
        // One by one, the rest of what was read stays pending under our name: read it again from there.
        if ((await this.sendBatch(batch)) < batch.length) this.behind = true;
      } catch (err) {
        if (!this.running) break;
        this.behind = true;
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
    // What was handed over is pending under our name since before this read is sent: it returns them. (One
    // handed over while it is under way may be returned too: sent by then, it is only acknowledged again.)
    this.handed = [];
    const entries = await this.reads.pending();
    // The stream and its group are there: a failure of the blocking read before this one is stale.
    this.readFailure = undefined;
    return entries;
  }

  /**
   * The next entries handed over or read from the stream, waiting for some (an empty batch when the blocking
   * read returned none, or when stopping).
   */
  private async nextNew(): Promise<StreamEntry[]> {
    if (this.handed.length === 0 && this.readFailure === undefined) {
      this.reading ??= this.readNew();
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    const failure = this.readFailure;
    if (failure) {
      this.readFailure = undefined;
      throw failure;
    }
    // Stopping: what was handed over stays pending, for the next start or another instance.
    if (!this.running) return [];
    return this.handed.splice(0, DELIVERY_BATCH);
  }

  /** The blocking read of new entries: they join what was handed over, in the order of the stream. */
  private readNew(): Promise<void> {
    return this.reads
      .next()
      .then(
        (entries) => this.hand(entries),
        (err: unknown) => {
          this.readFailure = err instanceof Error ? err : new Error(String(err));
        },
      )
      .finally(() => {
        this.reading = undefined;
        this.wakeLoop();
      });
  }

  private hand(entries: StreamEntry[]): void {
    const [first] = entries;
    if (first === undefined) return;
    const last = this.handed.at(-1);
    this.handed.push(...entries);
    // A read's answer and a write's on two connections may come in either order.
    if (last !== undefined && byEntryId(first, last) < 0) this.handed.sort(byEntryId);
    this.wakeLoop();
  }

  private wakeLoop(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
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
    // On the connection of the pending reads, out of the way of the shared one; behind a WAIT under way there,
    // or once stopping (that connection is closed first), on the shared connection.
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
