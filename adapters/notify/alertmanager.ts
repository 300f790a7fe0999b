/**
 * The Prometheus Alertmanager receiver: POST /api/v1/alertmanager with the webhook payload, version 4
 * (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config), authenticated with the same
 * bearer tokens (Alertmanager's `http_config.authorization`).
 *
 * One notification per group key: the first firing payload of a group becomes an alert (from
 * `<receiver>@<domain>`); while it is open, a repeat of the group (Alertmanager's repeat_interval, or a
 * retry) sends nothing, and a changed group corrects the message (XEP-0308). A resolved payload marks the alert resolved, stops its escalation and tells each recipient
 * ("Resolved: …", and an XEP-0308 correction of the original message). Recipients: `?to=` (JIDs and group
 * names, comma-separated), else the token's `defaultRecipients`.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import type { RouteOptions } from "fastify";
import type { AdapterContext } from "../../src/adapter.js";
import { invalid, API_PREFIX } from "./api.js";
import { sourceLocalpart } from "./codec.js";
import { alertBody, sourceJid, xmppIdOf } from "./escalation.js";
import { ApiError, type Intake } from "./intake.js";
import type { AlertStore, Severity } from "./store.js";

/** Most alerts of one group listed in the alert's text. */
export const MAX_LISTED_ALERTS = 20;

const labels = z.record(z.string(), z.string());
export const webhookSchema = z.object({
  version: z.string(),
  groupKey: z.string().min(1).max(10_000),
  status: z.enum(["firing", "resolved"]),
  receiver: z.string().max(1000),
  groupLabels: labels.default({}),
  commonLabels: labels.default({}),
  commonAnnotations: labels.default({}),
  externalURL: z.string().optional(),
  truncatedAlerts: z.number().optional(),
  alerts: z
    .array(
      z.object({
        status: z.enum(["firing", "resolved"]),
        labels: labels.default({}),
        annotations: labels.default({}),
        startsAt: z.string().optional(),
        endsAt: z.string().optional(),
        generatorURL: z.string().optional(),
        fingerprint: z.string().optional(),
      }),
    )
    .max(10_000),
});
type Webhook = z.output<typeof webhookSchema>;

function severityOf(payload: Webhook): Severity {
  const s = (payload.commonLabels.severity ?? "").toLowerCase();
  if (s === "critical" || s === "page") return "critical";
  if (s === "info" || s === "none") return "info";
  return "warning";
}

function describe(payload: Webhook): { title: string; text: string } {
  const name = payload.commonLabels.alertname ?? payload.groupLabels.alertname ?? "alert";
  const firing = payload.alerts.filter((a) => a.status === "firing");
  const title = `${name}${firing.length > 1 ? ` (${firing.length} alerts)` : ""}`;
  const lines = payload.alerts.slice(0, MAX_LISTED_ALERTS).map((a) => {
    const what = a.annotations.summary ?? a.annotations.description ?? "";
    const who = Object.entries(a.labels)
      .filter(([k]) => k !== "alertname" && k !== "severity")
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return `- ${what || name}${who ? ` (${who})` : ""}`;
  });
  if (payload.alerts.length > MAX_LISTED_ALERTS)
    lines.push(`… and ${payload.alerts.length - MAX_LISTED_ALERTS} more`);
  return { title, text: lines.join("\n") };
}

export function mountAlertmanager(opts: {
  ctx: AdapterContext;
  intake: Intake;
  store: AlertStore;
  route: (options: RouteOptions) => void;
}): void {
  const { ctx, intake, store, route } = opts;
  route({
    method: "POST",
    url: `${API_PREFIX}/alertmanager`,
    handler: async (request, reply) => {
      const token = intake.authenticate(request);
      const body = request.body as { version?: unknown } | undefined;
      if (body?.version !== "4")
        throw new ApiError(400, {
          error: "unsupported-version",
          message: `only Alertmanager webhook payload version "4" is accepted (got ${JSON.stringify(body?.version ?? null)})`,
          issues: [{ path: "version", message: 'expected "4"' }],
        });
      const parsed = webhookSchema.safeParse(body);
      if (!parsed.success) throw invalid(parsed.error);
      const payload = parsed.data;
      const { to } = request.query as { to?: string };
      const recipients =
        to === undefined
          ? token.defaultRecipients
          : to
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean);
      if (recipients.length === 0)
        throw new ApiError(400, {
          error: "invalid",
          message: "no recipients: add ?to=… or set the token's defaultRecipients",
          issues: [{ path: "to", message: "no recipients" }],
        });
      // The group's open alert is found by its dedup key (freed when the alert resolves).
      const scope = `am:${token.name}`;
      if (payload.status === "resolved") {
        const id = await ctx.redis.get(intake.dedupKeyOf(scope, payload.groupKey));
        const alert = id ? await store.get(id) : undefined;
        if (alert && (await store.resolve(alert.id, new Date().toISOString())))
          await tellResolved(ctx, store, alert.id);
        return reply
          .type("application/json")
          .send({ status: "resolved", ...(alert ? { id: alert.id } : {}) });
      }
      const { title, text } = describe(payload);
      const answer = await intake.take(
        token,
        { recipients, title, text, severity: severityOf(payload), dedupKey: payload.groupKey },
        { source: sourceLocalpart(payload.receiver), dedupScope: scope },
      );
      const taken = JSON.parse(answer) as { id: string; status: string };
      // The group changed while its alert is open (alerts joined or left): the message is corrected.
      if (taken.status === "duplicate") await tellChanged(ctx, store, taken.id, title, text);
      return reply.type("application/json").send(answer);
    },
  });
}

/** XEP-0308: corrects the alert message of every recipient who got it, when the group's text changed. */
async function tellChanged(
  ctx: AdapterContext,
  store: AlertStore,
  id: string,
  title: string,
  text: string,
): Promise<void> {
  const alert = await store.get(id);
  if (!alert || alert.status !== "firing" || (alert.title === title && alert.text === text)) return;
  await store.update(id, { title, text });
  const version = createHash("sha256").update(`${title}\n${text}`).digest("hex").slice(0, 12);
  const states = await store.states(id);
  for (const jid of alert.recipients) {
    if (states[`${jid} xmpp sent`] === undefined) continue;
    await ctx.deliver(
      {
        kind: "message",
        to: jid,
        from: sourceJid(alert, ctx.domain),
        id: `${xmppIdOf(id)}-v${version}`,
        type: "chat",
        body: alertBody({ ...alert, title, text }),
        replaces: xmppIdOf(id),
      },
      { dedupeId: `${id}/${jid}/v${version}` },
    );
  }
}

/** Tells every recipient who got the alert over XMPP that it is resolved. */
async function tellResolved(ctx: AdapterContext, store: AlertStore, id: string): Promise<void> {
  const alert = await store.get(id);
  if (!alert) return;
  const states = await store.states(id);
  for (const jid of alert.recipients) {
    await store.closeFor(jid, id);
    if (states[`${jid} xmpp sent`] === undefined) continue;
    const from = sourceJid(alert, ctx.domain);
    // XEP-0308: the original message now reads as resolved, where the client supports corrections.
    await ctx.deliver(
      {
        kind: "message",
        to: jid,
        from,
        id: `${xmppIdOf(id)}-fix`,
        type: "chat",
        body: `[RESOLVED] ${alertBody(alert)}`,
        replaces: xmppIdOf(id),
      },
      { dedupeId: `${id}/${jid}/fix` },
    );
    await ctx.deliver(
      {
        kind: "message",
        to: jid,
        from,
        id: `${xmppIdOf(id)}-resolved`,
        type: "chat",
        body: `Resolved: ${alert.title}`,
      },
      { dedupeId: `${id}/${jid}/resolved` },
    );
  }
}
