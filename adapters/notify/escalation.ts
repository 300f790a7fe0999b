/**
 * Escalation: runs each recipient's steps as their timers come due. A step sends on its channel, then
 * schedules the next step after its `waitSeconds`; when the next step comes due it first checks whether
 * the previous one reached what it waited for (`until`: delivered, or acknowledged) and stops there if so.
 * A critical alert (policy criticalAllAtOnce) goes out on every channel at once. An ack stops everything
 * for that alert and recipient.
 */
import { createHash } from "node:crypto";
import type { AdapterContext } from "../../src/adapter.js";
import type { Channels } from "./channels.js";
import type { Channel, NotifyConfig, Policy, Step } from "./config.js";
import { inQuietHours, type Directory } from "./directory.js";
import type { NotifyMetrics } from "./metrics.js";
import type { StepRef, StepTimers } from "./steps.js";
import type { AlertHead, AlertStore } from "./store.js";

/** Most steps claimed per poll. */
export const CLAIM_BATCH = 100;
/** Path of the notify adapter's Twilio status callback (under /notify/). */
export const SMS_STATUS_PATH = "/twilio/status";
/** How long an SMS's MessageSid is tied to its alert for status callbacks: 7 days. */
export const SID_TTL_SECONDS = 7 * 24 * 3600;

/** The stanza id of an alert's XMPP message (receipts and markers name it). */
export const xmppIdOf = (alertId: string) => `alert-${alertId}`;
export const alertIdOfXmpp = (id: string) => (id.startsWith("alert-") ? id.slice(6) : undefined);

export function sourceJid(alert: AlertHead, domain: string): string {
  return `${alert.source}@${domain}`;
}

export function alertBody(alert: AlertHead): string {
  const tag =
    alert.severity === "critical" ? "[CRITICAL] " : alert.severity === "warning" ? "[WARNING] " : "";
  return `${tag}${alert.title}\n${alert.text}\n\nReply "ack" to acknowledge (alert ${alert.id}).`;
}

/** A step whose channel's rate is spent this window: it goes back to the timers, due as before. */
class HeldByRate extends Error {
  constructor(readonly channel: Channel) {
    super(`the ${channel} rate is spent for now`);
    this.name = "HeldByRate";
  }
}

export interface EscalatorDeps {
  ctx: AdapterContext;
  config: NotifyConfig;
  store: AlertStore;
  steps: StepTimers;
  directory: Directory;
  channels: Channels;
  metrics: NotifyMetrics;
}

export class Escalator {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: EscalatorDeps) {}

  policyOf(alert: AlertHead): Policy {
    const { policies, defaultPolicy } = this.deps.config;
    const policy = policies[alert.policy] ?? policies[defaultPolicy];
    if (!policy) throw new Error(`no escalation policy "${alert.policy}"`);
    return policy;
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.poll()
        .catch((err: unknown) =>
          this.deps.ctx.log.warn({ err: (err as Error).message }, "escalation poll failed; retrying"),
        )
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.deps.config.timers.pollMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Claims the due steps and runs them. */
  async poll(): Promise<void> {
    const refs = await this.deps.steps.claim(this.deps.config.timers.claimLeaseSeconds * 1000, CLAIM_BATCH);
    await Promise.all(
      refs.map(async (ref) => {
        try {
          await this.runStep(ref);
          await this.deps.steps.done(ref);
        } catch (err) {
          if (err instanceof HeldByRate) {
            this.deps.metrics.held.inc({ channel: err.channel });
            await this.deps.steps.release(ref);
            return;
          }
          // Left in `running`: claimed again when its lease runs out.
          this.deps.ctx.log.warn(
            { err: (err as Error).message, alert: ref.alertId, jid: ref.jid, step: ref.step },
            "escalation step failed; it runs again after its lease",
          );
        }
      }),
    );
  }

  private async runStep(ref: StepRef): Promise<void> {
    const { store } = this.deps;
    const alert = await store.head(ref.alertId);
    if (!alert || alert.status === "resolved") return;
    if (await store.acked(alert.id, ref.jid)) return;
    const policy = this.policyOf(alert);
    const log = this.deps.ctx.log.child({ alert: alert.id, jid: ref.jid, step: ref.step });
    if (alert.severity === "critical" && policy.criticalAllAtOnce) {
      if (ref.step !== 0) return;
      log.info("critical alert: every channel at once");
      for (const step of policy.steps) await this.send(alert, ref.jid, step.channel, true);
      return;
    }
    const previous = ref.step > 0 ? policy.steps[ref.step - 1] : undefined;
    if (previous && (await this.satisfied(alert, ref.jid, previous))) {
      log.info({ channel: previous.channel }, "escalation ends: the previous step reached its aim");
      return;
    }
    const step = policy.steps[ref.step];
    if (!step) return;
    const sent = await this.send(alert, ref.jid, step.channel, false);
    // An XMPP user known to be offline (they share their presence) cannot send a receipt soon: go on now.
    const offline = step.channel === "xmpp" && (await store.knownOffline(ref.jid));
    if (offline) log.info("the recipient is offline: the next step runs now");
    if (ref.step + 1 < policy.steps.length) {
      const delayMs = sent && !offline ? step.waitSeconds * 1000 : 0;
      await this.deps.steps.schedule({ ...ref, step: ref.step + 1 }, delayMs);
      log.info({ channel: step.channel, sent, nextInMs: delayMs }, "escalation step done");
    } else log.info({ channel: step.channel, sent }, "last escalation step done");
  }

  private async satisfied(alert: AlertHead, jid: string, step: Step): Promise<boolean> {
    const until = step.until ?? (step.channel === "xmpp" ? "delivered" : "acknowledged");
    if (until === "acknowledged") return this.deps.store.acked(alert.id, jid);
    const states = await this.deps.store.stateOf(alert.id, jid, [
      `${step.channel} delivered`,
      `${step.channel} displayed`,
    ]);
    return Object.keys(states).length > 0;
  }

  /** Sends on one channel; false when the channel cannot reach the person (skipped) or failed. */
  private async send(alert: AlertHead, jid: string, channel: Channel, critical: boolean): Promise<boolean> {
    const { ctx, store, channels, directory, metrics } = this.deps;
    const log = ctx.log.child({ alert: alert.id, jid, channel });
    const contact = await directory.contact(jid);
    if (!contact.channels.has(channel)) {
      log.info("the recipient does not take alerts on this channel: skipped");
      return false;
    }
    if (channel !== "xmpp" && !critical && inQuietHours(contact, new Date())) {
      log.info("quiet hours: skipped");
      return false;
    }
    if (channel === "xmpp") {
      await this.slot("xmpp", this.deps.config.rates.xmppPerSecond);
      await ctx.deliver(
        {
          kind: "message",
          to: jid,
          from: sourceJid(alert, ctx.domain),
          id: xmppIdOf(alert.id),
          type: "chat",
          body: alertBody(alert),
          requestReceipt: true,
          markable: true,
        },
        { dedupeId: `${alert.id}/${jid}` },
      );
      if (await store.mark(alert.id, jid, "xmpp", "sent")) metrics.sent.inc({ channel });
      return true;
    }
    if (channel === "sms") {
      if (!channels.smsEnabled || !contact.phone) {
        log.info("no SMS channel or no verified phone number: skipped");
        return false;
      }
      await store.mark(alert.id, jid, "sms", "queued");
      // At most once: a step run again after a crash does not text twice.
      if (!(await store.once(alert.id, jid, "sms handoff"))) return true;
      try {
        const sent = await channels.sendSms(contact.phone, smsText(alert), {
          statusCallback: ctx.http?.publicUrlFor(SMS_STATUS_PATH),
        });
        await ctx.ids.put("notify-sid", sent.sid, { alert: alert.id, jid }, SID_TTL_SECONDS);
        await store.mark(alert.id, jid, "sms", "sent");
        metrics.sent.inc({ channel });
        return true;
      } catch (err) {
        log.warn({ err: (err as Error).message }, "SMS not sent");
        await store.mark(alert.id, jid, "sms", "failed");
        return false;
      }
    }
    if (!channels.emailEnabled || !contact.email) {
      log.info("no email channel or no verified address: skipped");
      return false;
    }
    await store.mark(alert.id, jid, "email", "queued");
    // A mail already handed off (a step run again) takes no slot; a new one waits for the rate.
    if ((await store.stateOf(alert.id, jid, ["email handoff"]))["email handoff"] === undefined)
      await this.slot("email", this.deps.config.rates.emailPerSecond);
    if (!(await store.once(alert.id, jid, "email handoff"))) return true;
    try {
      const hash = createHash("sha256").update(jid).digest("hex").slice(0, 16);
      await channels.sendEmail(
        contact.email,
        `${alert.severity === "critical" ? "[CRITICAL] " : ""}${alert.title}`,
        mailText(alert),
        {
          messageId: `<${alert.id}.${hash}@${ctx.domain}>`,
        },
      );
      // The relay took it (250): as far as email tells, delivered.
      await store.mark(alert.id, jid, "email", "sent");
      await store.mark(alert.id, jid, "email", "delivered");
      metrics.sent.inc({ channel });
      metrics.delivered.inc({ channel });
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message }, "mail not sent");
      await store.mark(alert.id, jid, "email", "failed");
      return false;
    }
  }

  /** Takes a send of the channel's rate, or holds the step back (HeldByRate) until a later poll. */
  private async slot(channel: Channel, perSecond: number): Promise<void> {
    if (!(await this.deps.store.rateSlot(channel, perSecond))) throw new HeldByRate(channel);
  }

  /** A channel failed for a recipient: the next step (if pending) runs now. */
  async failed(alertId: string, jid: string, channel: Channel): Promise<void> {
    const { store } = this.deps;
    await store.mark(alertId, jid, channel, "failed");
    const alert = await store.head(alertId);
    if (!alert) return;
    const steps = this.policyOf(alert).steps;
    const index = steps.findIndex((s) => s.channel === channel);
    if (index >= 0 && index + 1 < steps.length)
      await this.deps.steps.hurry({ alertId, jid, step: index + 1 });
  }

  async delivered(alertId: string, jid: string, channel: Channel, state: "delivered" | "displayed") {
    if (await this.deps.store.mark(alertId, jid, channel, state))
      if (state === "delivered") this.deps.metrics.delivered.inc({ channel });
  }
}

function smsText(alert: AlertHead): string {
  const tag = alert.severity === "critical" ? "CRITICAL: " : "";
  return `${tag}${alert.title}\n${alert.text}`.slice(0, 600);
}

function mailText(alert: AlertHead): string {
  return `${alert.text}\n\nSeverity: ${alert.severity}\nAlert: ${alert.id}\nSource: ${alert.source}\n`;
}
