/**
 * The notify adapter: alerts from monitoring to people. Alerts arrive over HTTP (the alert API and an
 * Alertmanager receiver), are stored durably in Redis, and go out from `<source>@<domain>` over XMPP with
 * a receipt request, then escalate per named policy to SMS and email until the person acknowledges.
 */
import type { FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import {
  defineAdapter,
  type Adapter,
  type AdapterContext,
  type AdhocCommand,
  type OutboundMessage,
  type SendOutcome,
  type UserReport,
} from "../../src/adapter.js";
import { validTwilioSignature } from "../sms/webhooks.js";
import { isTerminal, statusRank } from "../sms/twilio-errors.js";
import { mountAlertmanager } from "./alertmanager.js";
import { mountApi } from "./api.js";
import { alertIdOfXmpp, Escalator, SMS_STATUS_PATH } from "./escalation.js";
import { Intake, sendError } from "./intake.js";
import { notifyMetrics, type NotifyMetrics } from "./metrics.js";
import { AlertStore } from "./store.js";
import { StepTimers } from "./steps.js";
import { ALERT_TTL_SECONDS, type Channel } from "./config.js";
import { single } from "../../src/xmpp/forms.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { createChannels, type Channels } from "./channels.js";
import { notifyCodec } from "./codec.js";
import { notifyConfigSchema, type NotifyConfig } from "./config.js";
import { Directory } from "./directory.js";
import { People } from "./people/index.js";
import { noticeEngine } from "./people/engine.js";

export class NotifyAdapter implements Adapter {
  readonly gatewayType = "xmpp";
  readonly name = "Alerts";
  readonly requiresRegistration = false;
  readonly codec = notifyCodec;
  readonly prompt = {
    desc: "Alerts come from their source's contact here; reply ack to acknowledge.",
    prompt: "Alert source",
    example: "monitoring",
  };
  /** SMS and email sending, shared with the recipients' verification commands. */
  readonly channels: Channels;
  private ctx: AdapterContext | undefined;
  /** Recipients' contacts, admins' groups and notices: their ad-hoc commands (adapters/notify/people). */
  readonly people = new People();
  private directoryOf: Directory | undefined;

  constructor(
    readonly config: AdapterBaseConfig & NotifyConfig,
    readonly secret: (envName: string) => string,
  ) {
    if (!(config.defaultPolicy in config.policies))
      throw new Error(`adapters.notify.defaultPolicy: no policy named "${config.defaultPolicy}"`);
    this.channels = createChannels(config, secret, {
      redis: () => this.context().redis,
      key: () => this.context().key,
    });
  }

  context(): AdapterContext {
    if (!this.ctx) throw new Error("notify adapter not started");
    return this.ctx;
  }

  get directory(): Directory {
    this.directoryOf ??= new Directory(this.context().redis, this.context().key);
    return this.directoryOf;
  }

  private running: { store: AlertStore; escalator: Escalator; metrics: NotifyMetrics } | undefined;

  private started() {
    if (!this.running) throw new Error("notify adapter not started");
    return this.running;
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- the contract is async
  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    const store = new AlertStore(ctx.redis, ctx.key, ALERT_TTL_SECONDS);
    const metrics = notifyMetrics(ctx.metrics);
    const escalator = new Escalator({
      ctx,
      config: this.config,
      store,
      steps: new StepTimers(ctx.redis, ctx.key),
      directory: this.directory,
      channels: this.channels,
      metrics,
    });
    this.running = { store, escalator, metrics };
    const http = ctx.http;
    const intake = new Intake({
      config: this.config,
      secret: this.secret,
      store,
      directory: this.directory,
      metrics,
      key: ctx.key,
    });
    this.people.start(ctx, this.channels, noticeEngine({ ctx, intake, store }), this.config.people);
    if (!http?.routeAbsolute) ctx.log.warn("the HTTP server is off: the alert API is not served");
    else {
      const routeAbsolute = http.routeAbsolute.bind(http);
      // Every API route answers its errors as JSON naming the problem (intake.ts sendError).
      const route = (options: RouteOptions) =>
        routeAbsolute({
          errorHandler: (err, _request, reply) => void sendError(reply, err, ctx.log),
          ...options,
        });
      mountApi({ ctx, intake, store, route });
      mountAlertmanager({ ctx, intake, store, route });
      if (this.config.twilio) this.mountSmsStatus(this.secret(this.config.twilio.authTokenEnv));
    }
    escalator.start();
  }

  /** Twilio's status callbacks for alert SMS: signed like the SMS adapter's, on /notify/twilio/status. */
  private mountSmsStatus(authToken: string): void {
    const ctx = this.context();
    const http = ctx.http;
    if (!http) return;
    const { escalator } = this.started();
    http.route({
      method: "POST",
      url: SMS_STATUS_PATH,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const form = (request.body ?? {}) as Record<string, string | undefined>;
        const signature = request.headers["x-twilio-signature"];
        if (
          typeof signature !== "string" ||
          !(await validTwilioSignature(authToken, signature, http.publicUrlFor(SMS_STATUS_PATH), form))
        )
          return reply.code(403).type("text/plain").send("invalid X-Twilio-Signature");
        const sid = typeof form.MessageSid === "string" ? form.MessageSid : "";
        const status = (typeof form.MessageStatus === "string" ? form.MessageStatus : "").toLowerCase();
        // Only a final report moves an escalation: the others are answered without a trip to the store.
        if (!isTerminal(status)) return reply.code(200).send("");
        const record = sid ? await ctx.ids.get("notify-sid", sid) : null;
        if (!record?.alert || !record.jid) return reply.code(200).send("");
        if (status === "failed" || status === "undelivered")
          await escalator.failed(record.alert, record.jid, "sms");
        else if (statusRank(status) >= statusRank("delivered"))
          await escalator.delivered(record.alert, record.jid, "sms", "delivered");
        return reply.code(200).send("");
      },
    });
  }

  async stop(): Promise<void> {
    await this.running?.escalator.stop();
    this.channels.close();
  }

  /** Acknowledges an alert for a recipient; the confirmation goes to the user from the alert's source. */
  async acknowledge(alertId: string, jid: string, channel: Channel, via: string): Promise<boolean> {
    const ctx = this.context();
    const { store, metrics } = this.started();
    const alert = await store.head(alertId);
    if (!alert || !(await store.isRecipient(alertId, jid))) return false;
    const steps =
      (this.config.policies[alert.policy] ?? this.config.policies[this.config.defaultPolicy])?.steps.length ??
      10;
    if (!(await store.ack(alertId, jid, channel, via, steps))) return true;
    metrics.acked.inc({ channel });
    metrics.timeToAck.observe(Math.max(0, (Date.now() - Date.parse(alert.createdAt)) / 1000));
    ctx.log.info({ alert: alertId, jid, via }, "alert acknowledged");
    await ctx.deliver(
      {
        kind: "message",
        to: jid,
        from: `${alert.source}@${ctx.domain}`,
        id: `alert-${alertId}-ack`,
        type: "chat",
        body: `Acknowledged: ${alert.title} (alert ${alertId}). No further escalation for you.`,
      },
      { dedupeId: `${alertId}/${jid}/ack` },
    );
    return true;
  }

  /** Replies to `<source>@domain`: "ack" or "1" acknowledges the latest open alert from it, "ack <id>" one. */
  async send(message: OutboundMessage): Promise<SendOutcome> {
    const ctx = this.context();
    const { store } = this.started();
    const words = message.body.trim().toLowerCase().split(/\s+/);
    const reply = (body: string) =>
      ctx.deliver(
        {
          kind: "message",
          to: message.from,
          from: message.toJid,
          id: `reply-${message.id}`,
          type: "chat",
          body,
        },
        { dedupeId: `${message.from}/${message.id}/reply` },
      );
    if (!(words[0] === "ack" || words[0] === "1") || words.length > 2) {
      await reply(
        'Reply "ack" (or "1") to acknowledge the latest alert from this source, or "ack <alert id>".',
      );
      return { status: "delivered" };
    }
    const wanted = words[1];
    const open = await store.openFor(message.user, MAX_OPEN_LISTED);
    let target: string | undefined;
    for (const id of open) {
      if (wanted !== undefined && id.toLowerCase() !== wanted) continue;
      const alert = await store.head(id);
      if (alert?.source === message.to) {
        target = id;
        break;
      }
    }
    if (!target) {
      await reply(
        wanted ? `No open alert ${wanted} from ${message.to}.` : `No open alert from ${message.to}.`,
      );
      return { status: "delivered" };
    }
    await this.acknowledge(target, message.user, "xmpp", "reply");
    return { status: "delivered" };
  }

  /** Users who share their presence with the alerts domain: an offline one is escalated at once. */
  async userPresence(presence: {
    from: string;
    user: string;
    type: "available" | "unavailable" | "revoked";
  }): Promise<void> {
    await this.started().store.presence(presence.from, presence.user.toLowerCase(), presence.type);
  }

  /** Receipts and markers for alert messages, and the server's bounces of them. */
  async report(report: UserReport): Promise<void> {
    const alertId = alertIdOfXmpp(report.id);
    if (!alertId || /-/.test(alertId)) return;
    const { store, escalator } = this.started();
    const jid = report.user.toLowerCase();
    // Only a recipient's report about their own alert counts; anything else is dropped unrecorded.
    const alert = await store.head(alertId);
    if (!alert || !(await store.isRecipient(alertId, jid))) return;
    if (report.kind === "error") {
      // The server could not deliver it (no such user, or no offline storage): escalate now.
      this.context().log.info({ alert: alertId, jid, condition: report.condition }, "alert message bounced");
      await escalator.failed(alertId, jid, "xmpp");
      return;
    }
    if (report.kind === "received") return escalator.delivered(alertId, jid, "xmpp", "delivered");
    await escalator.delivered(alertId, jid, "xmpp", "displayed");
    if (this.config.policies[alert.policy]?.displayedIsAck ?? false)
      await this.acknowledge(alertId, jid, "xmpp", "displayed");
  }

  readonly commands: AdhocCommand[] = [
    {
      node: "notify-ack",
      name: "Acknowledge alerts",
      form: async (user: string) => {
        const { store } = this.started();
        const options = [];
        for (const id of await store.openFor(user, MAX_OPEN_LISTED)) {
          const alert = await store.head(id);
          if (alert)
            options.push({ label: `${alert.title} (${alert.source}, ${alert.createdAt})`, value: id });
        }
        return {
          title: "Acknowledge alerts",
          instructions: options.length
            ? "Choose the alert to acknowledge, or all."
            : "You have no open alerts.",
          fields: [
            {
              var: "alert",
              type: "list-single" as const,
              label: "Alert",
              required: true,
              options: [{ label: "All my open alerts", value: "all" }, ...options],
              value: "all",
            },
          ],
        };
      },
      run: async (user: string, values) => {
        const { store } = this.started();
        const choice = single(values, "alert");
        const ids = choice === "all" ? await store.openFor(user, MAX_OPEN_LISTED) : [choice];
        let count = 0;
        for (const id of ids) if (await this.acknowledge(id, user, "xmpp", "command")) count++;
        return { note: count ? `${count} alert(s) acknowledged.` : "No open alert to acknowledge." };
      },
    },
    // Recipients' contacts, admins' groups and notices (adapters/notify/people).
    ...this.people.commands,
  ];
}

/** Most open alerts looked at for one recipient (an ack reply, the ad-hoc command's list). */
export const MAX_OPEN_LISTED = 50;

export const notifyAdapter = defineAdapter({
  configSchema: notifyConfigSchema,
  create: (config, secret) => new NotifyAdapter(config, secret),
});
