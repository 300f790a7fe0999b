/**
 * Alerts in Redis. One alert is a hash (`alert:<id>`, versioned), its per-recipient delivery state a hash
 * (`state:<id>`: field `<jid> <channel> <state>` → ISO time), and its escalation steps members of one
 * sorted set of due times (`timers`); its recipients are also a set (`recipients:<id>`), so a step or a
 * receipt checks membership without reading the list. Creating an alert writes a pending record, then the
 * recipients in bounded chunks with their first steps staged, then commits in one small script that makes
 * the steps due and sets the dedup key and the Idempotency-Key answer: before the commit no reader sees
 * any of it, and an alert whose creator died in between expires. Running the steps: steps.ts.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import type { Channel } from "./config.js";
import { CREATE_BEGIN, CREATE_CHUNK, CREATE_COMMIT, RATE_SLOT } from "./store-scripts.js";
import { STEP_TIMERS, stepMember } from "./steps.js";

export const ALERT_VERSION = "1";

export type Severity = "info" | "warning" | "critical";

export interface AlertRecord {
  id: string;
  /** Sender localpart (token name or Alertmanager receiver, folded). */
  source: string;
  /** Name of the token that created it. */
  token: string;
  title: string;
  text: string;
  severity: Severity;
  policy: string;
  createdAt: string;
  status: "firing" | "resolved";
  resolvedAt?: string;
  recipients: string[];
}

/** A recipient's state on a channel, lowest to highest. */
export const STATES = ["queued", "sent", "failed", "delivered", "displayed", "acknowledged"] as const;
export type DeliveryState = (typeof STATES)[number];

/** An alert without its recipient list: what one escalation step reads. */
export type AlertHead = Omit<AlertRecord, "recipients">;

/** Most alerts the recent-alerts index keeps (newest first; older ones drop off it, not out of the store). */
export const RECENT_ALERTS_KEPT = 1_000;

const HEAD_FIELDS = [
  "v",
  "id",
  "source",
  "token",
  "title",
  "text",
  "severity",
  "policy",
  "createdAt",
  "status",
  "resolvedAt",
  "pending",
] as const;

/** Recipients written per script while a large alert is created (Redis runs nothing else during one). */
export const CREATE_CHUNK_RECIPIENTS = 1_000;
/** How long a half-created alert's keys live if its creator dies before the commit: 10 minutes. */
export const PENDING_TTL_SECONDS = 600;

/** An alert's own fields as stored; undefined for another version or one still being created. */
function decodeHead(h: Partial<Record<string, string>>): AlertHead | undefined {
  if (!h.id || h.v !== ALERT_VERSION || h.pending) return undefined;
  return {
    id: h.id,
    source: h.source ?? "",
    token: h.token ?? "",
    title: h.title ?? "",
    text: h.text ?? "",
    severity: (h.severity as Severity | undefined) ?? "info",
    policy: h.policy ?? "default",
    createdAt: h.createdAt ?? "",
    status: h.status === "resolved" ? "resolved" : "firing",
    ...(h.resolvedAt ? { resolvedAt: h.resolvedAt } : {}),
  };
}

export class AlertStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    private readonly ttlSeconds: number,
  ) {}

  alertKey(id: string): string {
    return this.key("alert", id);
  }

  /**
   * Stores a new alert with every recipient's first step due now. `idempotency` is the key under which
   * `answer` is kept (a replay gets it back); `dedup` names an open alert to reuse. Written in bounded
   * chunks (CREATE_CHUNK_RECIPIENTS per script) behind a pending record that no reader sees; one small
   * script commits it, making the steps due. Until then nothing of it is visible, and if the creator dies
   * in between the pending keys expire (PENDING_TTL_SECONDS).
   */
  async create(
    alert: AlertRecord,
    opts: { idempotencyKey?: string; idempotencyTtl: number; answer: string; dedupKey?: string },
  ): Promise<{ stored: true } | { replay: string } | { duplicateOf: string }> {
    const fields: Record<string, string> = {
      v: ALERT_VERSION,
      id: alert.id,
      source: alert.source,
      token: alert.token,
      title: alert.title,
      text: alert.text,
      severity: alert.severity,
      policy: alert.policy,
      createdAt: alert.createdAt,
      status: alert.status,
      recipients: JSON.stringify(alert.recipients),
      ...(opts.dedupKey ? { dedupKey: opts.dedupKey } : {}),
    };
    const alertKey = this.alertKey(alert.id);
    const idem = opts.idempotencyKey ?? "";
    const dedup = opts.dedupKey ?? "";
    const early = await this.verdict(
      CREATE_BEGIN.run(
        this.redis,
        [alertKey, idem, dedup],
        [String(PENDING_TTL_SECONDS), JSON.stringify(fields)],
      ),
    );
    if (early) return early;
    const perAlert = [
      this.key("state", alert.id),
      this.key("recipients", alert.id),
      this.key("staged", alert.id),
    ];
    try {
      for (let i = 0; i < alert.recipients.length; i += CREATE_CHUNK_RECIPIENTS) {
        const chunk = alert.recipients.slice(i, i + CREATE_CHUNK_RECIPIENTS);
        await CREATE_CHUNK.run(
          this.redis,
          [...perAlert, ...chunk.map((jid) => this.key("open", jid))],
          [
            String(PENDING_TTL_SECONDS),
            String(this.ttlSeconds),
            alert.createdAt,
            alert.id,
            ...chunk.map((jid) => stepMember({ alertId: alert.id, jid, step: 0 })),
          ],
        );
      }
      const [code, value] = (await CREATE_COMMIT.run(
        this.redis,
        [alertKey, ...perAlert, this.key(STEP_TIMERS), idem, dedup, this.key("alerts-recent")],
        [
          String(this.ttlSeconds),
          String(opts.idempotencyTtl),
          opts.answer,
          String(RECENT_ALERTS_KEPT),
          alert.id,
        ],
      )) as [number, string];
      if (code === 2) return { stored: true };
      if (code === 3) throw new Error(`alert ${alert.id} expired before it was committed`);
      await this.discard(alert);
      return code === 0 ? { replay: value } : { duplicateOf: value };
    } catch (err) {
      await this.discard(alert).catch(() => undefined);
      throw err;
    }
  }

  private async verdict(
    reply: Promise<unknown>,
  ): Promise<{ replay: string } | { duplicateOf: string } | undefined> {
    const [code, value] = (await reply) as [number, string];
    if (code === 0) return { replay: value };
    if (code === 1) return { duplicateOf: value };
    return undefined;
  }

  /** Removes an alert that was never committed (another request won, or a write failed). */
  private async discard(alert: AlertRecord): Promise<void> {
    await this.redis.del(
      this.alertKey(alert.id),
      this.key("state", alert.id),
      this.key("recipients", alert.id),
      this.key("staged", alert.id),
    );
    for (let i = 0; i < alert.recipients.length; i += CREATE_CHUNK_RECIPIENTS) {
      const multi = this.redis.multi();
      for (const jid of alert.recipients.slice(i, i + CREATE_CHUNK_RECIPIENTS))
        multi.zrem(this.key("open", jid), alert.id);
      await multi.exec();
    }
  }

  async get(id: string): Promise<AlertRecord | undefined> {
    const h = await this.redis.hgetall(this.alertKey(id));
    const head = decodeHead(h);
    return head && { ...head, recipients: JSON.parse(h.recipients ?? "[]") as string[] };
  }

  /** The alert's own fields without its recipient list (one HMGET, whatever the number of recipients). */
  async head(id: string): Promise<AlertHead | undefined> {
    const values = await this.redis.hmget(this.alertKey(id), ...HEAD_FIELDS);
    const h = Object.fromEntries(HEAD_FIELDS.map((f, i) => [f, values[i] ?? undefined])) as Partial<
      Record<(typeof HEAD_FIELDS)[number], string>
    >;
    return decodeHead(h);
  }

  /** Whether `jid` is one of the alert's recipients (a set lookup, never the whole list). */
  async isRecipient(id: string, jid: string): Promise<boolean> {
    return (await this.redis.sismember(this.key("recipients", id), jid)) === 1;
  }

  /** The newest alerts' ids, newest first, from the index written at creation. */
  async recent(limit: number): Promise<string[]> {
    return this.redis.zrevrange(this.key("alerts-recent"), 0, limit - 1);
  }

  /** Some of a recipient's states (HMGET): the fields `<jid> <what>` asked for, present or not. */
  async stateOf(id: string, jid: string, what: string[]): Promise<Record<string, string>> {
    if (what.length === 0) return {};
    const values = await this.redis.hmget(this.key("state", id), ...what.map((w) => `${jid} ${w}`));
    const out: Record<string, string> = {};
    what.forEach((w, i) => {
      const v = values[i];
      if (v !== null && v !== undefined) out[w] = v;
    });
    return out;
  }

  /**
   * Takes one send from a channel's rate, shared by every instance: a fixed window counter in Redis. False
   * when this window's budget is spent (the caller holds the step back and tries again later).
   */
  async rateSlot(channel: string, perSecond: number): Promise<boolean> {
    const windowMs = Math.max(1000, Math.ceil(1000 / perSecond));
    const allowed = Math.max(1, Math.floor((perSecond * windowMs) / 1000));
    const window = Math.floor(Date.now() / windowMs);
    const key = this.key("rate", channel, String(window));
    return (await RATE_SLOT.run(this.redis, [key], [String(allowed), String(windowMs)])) === 1;
  }

  /** Changes an open alert's title and text (an Alertmanager group that changed). */
  async update(id: string, fields: { title: string; text: string }): Promise<void> {
    await this.redis.hset(this.alertKey(id), fields);
  }

  /** Marks the alert resolved; false when it already was (or is gone). Frees its dedup key. */
  async resolve(id: string, at: string): Promise<boolean> {
    const key = this.alertKey(id);
    const [[, status], [, dedupKey]] = (await this.redis
      .multi()
      .hget(key, "status")
      .hget(key, "dedupKey")
      .exec()) as [[null, string | null], [null, string | null]];
    if (status !== "firing") return false;
    const changed = await this.redis.hsetnx(key, "resolvedAt", at);
    if (!changed) return false;
    const multi = this.redis.multi().hset(key, "status", "resolved");
    if (dedupKey) multi.del(dedupKey);
    await multi.exec();
    return true;
  }

  /** Records a recipient's channel state (the first time of each state is kept). */
  async mark(id: string, jid: string, channel: Channel, state: DeliveryState, at = new Date()) {
    return (
      (await this.redis.hsetnx(this.key("state", id), `${jid} ${channel} ${state}`, at.toISOString())) === 1
    );
  }

  /** Sets a marker once; false when it was already set (e.g. an SMS already handed to Twilio). */
  async once(id: string, jid: string, what: string): Promise<boolean> {
    return (await this.redis.hsetnx(this.key("state", id), `${jid} ${what}`, new Date().toISOString())) === 1;
  }

  async states(id: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.key("state", id));
  }

  async acked(id: string, jid: string): Promise<boolean> {
    return (await this.redis.hexists(this.key("state", id), `${jid} ack`)) === 1;
  }

  /** Records the ack once; false when the recipient had already acknowledged. */
  async ack(id: string, jid: string, channel: Channel, via: string, steps: number): Promise<boolean> {
    const now = new Date().toISOString();
    const state = this.key("state", id);
    const first = await this.redis.hsetnx(state, `${jid} ack`, now);
    if (!first) return false;
    const multi = this.redis
      .multi()
      .hset(state, `${jid} ackVia`, via)
      .hsetnx(state, `${jid} ${channel} acknowledged`, now)
      .zrem(this.key("open", jid), id);
    for (let step = 0; step <= steps; step++)
      multi.zrem(this.key(STEP_TIMERS), stepMember({ alertId: id, jid, step }));
    await multi.exec();
    return true;
  }

  /** The recipient's open alerts, newest first. */
  async openFor(jid: string, limit: number): Promise<string[]> {
    return this.redis.zrevrange(this.key("open", jid), 0, limit - 1);
  }

  async closeFor(jid: string, id: string): Promise<void> {
    await this.redis.zrem(this.key("open", jid), id);
  }

  /** Follows a user's shared presence: which of their resources are online. */
  async presence(from: string, user: string, type: "available" | "unavailable" | "revoked"): Promise<void> {
    const online = this.key("online", user);
    const known = this.key("presence-known", user);
    if (type === "revoked") {
      await this.redis.del(online, known);
      return;
    }
    const multi = this.redis.multi().set(known, "1", "EX", this.ttlSeconds);
    if (type === "available") multi.sadd(online, from).expire(online, this.ttlSeconds);
    else multi.srem(online, from);
    await multi.exec();
  }

  /** True when the user shares their presence and has no resource online; false otherwise (or unknown). */
  async knownOffline(user: string): Promise<boolean> {
    const [[, known], [, count]] = (await this.redis
      .multi()
      .exists(this.key("presence-known", user))
      .scard(this.key("online", user))
      .exec()) as [[null, number], [null, number]];
    return known === 1 && count === 0;
  }

  /** The answer kept under an Idempotency-Key, if any. */
  async replay(key: string): Promise<string | undefined> {
    return (await this.redis.get(key)) ?? undefined;
  }

  /** An answer kept under an Idempotency-Key (set only if none is kept yet). */
  async keepAnswer(key: string, answer: string, ttl: number): Promise<string> {
    const set = await this.redis.set(key, answer, "EX", ttl, "NX");
    return set ? answer : ((await this.redis.get(key)) ?? answer);
  }
}
