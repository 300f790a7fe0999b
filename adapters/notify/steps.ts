/**
 * The escalation steps' timers in Redis: every pending step of every recipient is a member of one sorted set of
 * due times (`timers`), `[alert id, bare JID, step index]`. A due step is claimed by a script that moves it to
 * `running` with a lease: a step claimed by an instance that dies is claimed again once the lease runs out.
 * Each step's own sends are idempotent (the XMPP message has a dedupe id; an SMS or mail is handed off at most
 * once, marked before it leaves), so a step that runs again after a crash sends nothing twice. An alert's
 * first steps are staged and made due by the store when it creates the alert (store.ts), and an acknowledgement
 * takes the recipient's steps off the set there too.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { CLAIM, SCHEDULE } from "./store-scripts.js";

/** The sorted set of pending steps by due time, and the one of claimed steps by lease end (key names). */
export const STEP_TIMERS = "timers";
const STEPS_RUNNING = "running";

/** A step of one recipient: (alert id, bare JID, step index). */
export interface StepRef {
  alertId: string;
  jid: string;
  step: number;
  /** When the step came due (ms since the epoch, Redis's clock): a step held back goes back there. */
  dueAt?: number;
}

/** A step as a member of the timer sets. */
export const stepMember = (ref: Pick<StepRef, "alertId" | "jid" | "step">): string =>
  JSON.stringify([ref.alertId, ref.jid, ref.step]);

function parseStepMember(raw: string): StepRef | undefined {
  try {
    const [alertId, jid, step] = JSON.parse(raw) as [unknown, unknown, unknown];
    if (typeof alertId === "string" && typeof jid === "string" && typeof step === "number")
      return { alertId, jid, step };
  } catch {
    // fall through: a member of another shape is dropped
  }
  return undefined;
}

export class StepTimers {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
  ) {}

  /** Makes a step due in `delayMs` (its due time is Redis's clock plus the delay). */
  async schedule(ref: StepRef, delayMs: number): Promise<void> {
    await SCHEDULE.run(this.redis, [this.key(STEP_TIMERS)], [stepMember(ref), String(delayMs), ""]);
  }

  /** Moves a pending step to now (the previous step failed); nothing when it is not pending. */
  async hurry(ref: StepRef): Promise<void> {
    await SCHEDULE.run(this.redis, [this.key(STEP_TIMERS)], [stepMember(ref), "0", "XX"]);
  }

  /** Up to `max` due steps, each leased to this instance for `leaseMs`. */
  async claim(leaseMs: number, max: number): Promise<StepRef[]> {
    const raw = (await CLAIM.run(
      this.redis,
      [this.key(STEP_TIMERS), this.key(STEPS_RUNNING)],
      [String(leaseMs), String(max)],
    )) as string[];
    const refs: StepRef[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const m = raw[i] as string;
      const ref = parseStepMember(m);
      if (ref) refs.push({ ...ref, dueAt: Number(raw[i + 1]) });
      else await this.redis.zrem(this.key(STEPS_RUNNING), m);
    }
    return refs;
  }

  /** A claimed step held back (its channel's rate is spent): due again at its first due time, in order. */
  async release(ref: StepRef): Promise<void> {
    const m = stepMember(ref);
    await this.redis
      .multi()
      .zrem(this.key(STEPS_RUNNING), m)
      .zadd(this.key(STEP_TIMERS), "NX", String(ref.dueAt ?? Date.now()), m)
      .exec();
  }

  /** The step ran (or will never run): off the running set. */
  async done(ref: StepRef): Promise<void> {
    await this.redis.zrem(this.key(STEPS_RUNNING), stepMember(ref));
  }
}
