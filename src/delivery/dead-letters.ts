/**
 * Where a domain's inbound entries go when they cannot be delivered, so that one bad entry does not hold the
 * domain down: an entry that cannot become a stanza is set aside at once; an entry the XMPP server did not
 * confirm, sent alone, counts an attempt, and is set aside after `maxAttempts`. Set aside = moved, with why,
 * from the inbox stream to the domain's dead-letter stream (its oldest entries trimmed), and the owner told.
 */
import type { InboundEvent } from "../adapter.js";
import type { Logger } from "../log.js";
import type { Keys } from "../store/keys.js";
import type { RedisClient } from "../store/redis-client.js";
import { execTransaction } from "../store/redis-client.js";
import { DELIVERY_GROUP, decodeEntry } from "./inbox.js";

/** Failed deliveries of one entry before it is set aside, when the config does not say. */
export const DEFAULT_MAX_ATTEMPTS = 5;
/** Entries kept in a domain's dead-letter stream (the oldest are trimmed). */
export const DEAD_LETTER_MAX = 10_000;

/** Told when an entry was set aside (`event` when it was a valid event). */
export type DeadLetterHook = (info: {
  entryId: string;
  event: InboundEvent | undefined;
  reason: string;
}) => Promise<void>;

export class DeadLetters {
  private readonly stream: string;
  private readonly deadStream: string;
  /** Hash: entry id → failed deliveries so far (cleared when the entry is acknowledged or set aside). */
  readonly attempts: string;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    domain: string,
    private readonly log: Logger,
    private readonly told: DeadLetterHook | undefined,
    private readonly maxAttempts = DEFAULT_MAX_ATTEMPTS,
  ) {
    this.stream = keys.inbox(domain);
    this.deadStream = keys.deadLetters(domain);
    this.attempts = keys.deliveryAttempts(domain);
  }

  /** The XMPP server did not confirm this entry, sent alone: count the attempt; set it aside after the last. */
  async failed(entryId: string): Promise<void> {
    const attempts = await this.redis.hincrby(this.attempts, entryId, 1);
    this.log.warn({ entryId, attempts, maxAttempts: this.maxAttempts }, "delivery of an entry failed");
    if (attempts < this.maxAttempts) return;
    const [entry] = await this.redis.xrange(this.stream, entryId, entryId);
    const fields = entry?.[1] ?? [];
    await this.setAside(
      entryId,
      fields,
      decodeEntry(fields) ?? undefined,
      `the XMPP server did not confirm it after ${attempts} attempts`,
    );
  }

  /** Moves an entry to the dead-letter stream (with why), out of the inbox, and tells the owner. */
  async setAside(
    entryId: string,
    fields: string[] | null,
    event: InboundEvent | undefined,
    reason: string,
  ): Promise<void> {
    await execTransaction(() =>
      this.redis
        .multi()
        .xadd(
          this.deadStream,
          "MAXLEN",
          "~",
          DEAD_LETTER_MAX,
          "*",
          "entry",
          entryId,
          "reason",
          reason,
          "at",
          new Date().toISOString(),
          ...(fields ?? []),
        )
        .xack(this.stream, DELIVERY_GROUP, entryId)
        .xdel(this.stream, entryId)
        .hdel(this.attempts, entryId),
    );
    this.log.error({ entryId, reason, to: event?.to }, "an inbound entry could not be delivered; set aside");
    await this.told?.({ entryId, event, reason }).catch((err: unknown) =>
      this.log.warn({ err: (err as Error).message }, "could not report a dead letter"),
    );
  }
}
