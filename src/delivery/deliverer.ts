/**
 * The read side of durable inbound delivery, one per component domain: reads the domain's stream through a
 * consumer group, sends each event as a stanza while the component stream is up, then pings the server as a
 * barrier (the server handles one stream in order: the pong means every stanza before it arrived) and only
 * then acknowledges and deletes the entries. After a crash or a lost stream, the entries still pending are
 * sent again with the same stanza ids, so clients can drop the copies (at-least-once delivery).
 */
import type { Redis } from "ioredis";
import type { Logger } from "../log.js";
import type { Keys } from "../store/keys.js";
import type { ComponentLink } from "../xmpp/link.js";
import { inboundStanza } from "../xmpp/stanzas.js";
import { DELIVERY_GROUP, decodeEntry, entryTime } from "./inbox.js";

/** Stanzas sent between two barrier pings. */
export const DELIVERY_BATCH = 100;
/** How long one blocking read waits for new entries. */
export const READ_BLOCK_MS = 2_000;
/** Entries left pending this long by another (dead) instance are taken over. */
export const CLAIM_IDLE_MS = 60_000;
/** How often to look for such entries (a cheap XAUTOCLAIM): a dead instance's entries wait at most the sum. */
export const CLAIM_CHECK_MS = 10_000;
/** Pause after an unexpected failure (Redis down…) before trying again. */
export const RETRY_PAUSE_MS = 1_000;
/** Longest stop() waits for the delivery loop to reach a safe point (a blocking read lasts READ_BLOCK_MS). */
export const STOP_WAIT_MS = READ_BLOCK_MS + 1_000;

type StreamReply = [string, [string, string[]][]][] | null;

export class Deliverer {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly reader: Redis;
  private readonly stream: string;
  private readonly log: Logger;
  private abort = new AbortController();
  /** Stanzas sent so far (for metrics and tests). */
  delivered = 0;

  constructor(
    private readonly redis: Redis,
    keys: Keys,
    private readonly link: ComponentLink,
    private readonly consumer: string,
    log: Logger,
    /** Told, once the server confirmed a batch, how long each entry waited since it was persisted. */
    private readonly onDelivered: (latencySeconds: number) => void = () => undefined,
  ) {
    this.stream = keys.inbox(link.domain);
    // Blocking reads tie up a connection: use a dedicated one.
    this.reader = redis.duplicate({ enableOfflineQueue: true });
    this.log = log.child({ domain: link.domain, part: "deliverer" });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.reader.disconnect();
    // A read queued while the reader was reconnecting (Redis just restarted) is never settled by
    // disconnect(): do not let it hold up the stop. Entries not yet acknowledged stay pending and are sent
    // again by the next deliverer, so nothing is lost.
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.loop?.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (gaveUp) this.log.warn({ waitedMs: STOP_WAIT_MS }, "stopped without waiting for a pending Redis read");
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
        const batch = pendingFirst ? await this.readPending() : await this.readNew();
        if (batch.length === 0) {
          pendingFirst = false;
          continue;
        }
        await this.sendBatch(batch);
      } catch (err) {
        if (!this.running) break;
        pendingFirst = true;
        this.log.warn({ err: (err as Error).message }, "delivery paused");
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
      }
    }
  }

  /** Our own pending entries, then entries abandoned by dead instances. */
  private async readPending(): Promise<[string, string[]][]> {
    const own = (await this.reader.xreadgroup(
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
    const claimed = (await this.reader.xautoclaim(
      this.stream,
      DELIVERY_GROUP,
      this.consumer,
      CLAIM_IDLE_MS,
      "0",
      "COUNT",
      DELIVERY_BATCH,
    )) as [string, [string, string[]][]];
    return claimed[1] ?? [];
  }

  private async readNew(): Promise<[string, string[]][]> {
    const reply = (await this.reader.xreadgroup(
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
    return reply?.[0]?.[1] ?? [];
  }

  private async sendBatch(batch: [string, string[]][]): Promise<void> {
    const done: string[] = [];
    for (const [entryId, fields] of batch) {
      const event = decodeEntry(fields);
      if (!event) {
        this.log.error({ entryId }, "dropping a corrupt inbox entry");
        done.push(entryId);
        continue;
      }
      await this.link.send(inboundStanza(event));
      done.push(entryId);
    }
    await this.link.ping();
    await this.redis
      .multi()
      .xack(this.stream, DELIVERY_GROUP, ...done)
      .xdel(this.stream, ...done)
      .exec();
    this.delivered += done.length;
    const confirmed = Date.now();
    for (const entryId of done) {
      const stored = entryTime(entryId);
      if (stored !== undefined) this.onDelivered(Math.max(0, (confirmed - stored) / 1000));
    }
    this.log.debug({ count: done.length }, "delivered");
  }
}
