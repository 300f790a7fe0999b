/**
 * The notify engine as the notice composer and the "Recent alerts" report see it. A notice is taken in by
 * the same code as an API alert (Intake.take: limits, one atomic write, escalation), under a token made for
 * it that may reach exactly the notice's recipients. Recent alerts are read from the alert store, never their
 * text.
 */
import type { AdapterContext } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";
import { ApiError, type Intake } from "../intake.js";
import { STATES, type AlertStore } from "../store.js";
import type { NoticeEngine } from "./index.js";
import type { AlertSummary } from "./notices.js";

/** The source notices come from: `notices@<alerts domain>`, so users can tell them from monitoring alerts. */
export const NOTICE_SOURCE = "notices";
/** Recipients listed per alert in the report; the others are counted by state. */
export const RECIPIENTS_SHOWN = 10;

/** One recipient's line: the furthest state reached on each channel, and the acknowledgement. */
export function recipientLine(jid: string, states: Record<string, string>): string {
  const channels: string[] = [];
  for (const channel of ["xmpp", "sms", "email"]) {
    const reached = STATES.filter((s) => states[`${jid} ${channel} ${s}`] !== undefined);
    const last = reached[reached.length - 1];
    if (last) channels.push(`${channel} ${last}`);
  }
  const acked = states[`${jid} ack`] !== undefined;
  return `${jid}: ${channels.join(", ") || "waiting"}${acked ? " (acknowledged)" : ""}`;
}

export function noticeEngine(opts: { ctx: AdapterContext; intake: Intake; store: AlertStore }): NoticeEngine {
  const { intake, store } = opts;
  return {
    async submit(notice) {
      const domains = [...new Set(notice.recipients.map((jid) => jid.slice(jid.indexOf("@") + 1)))];
      const token = {
        name: NOTICE_SOURCE,
        tokenEnv: "",
        recipients: domains,
        groups: [],
        defaultRecipients: [],
      };
      let answer: string;
      try {
        answer = await intake.take(
          token,
          {
            recipients: notice.recipients,
            title: notice.title,
            text: notice.text,
            severity: notice.severity,
          },
          { source: NOTICE_SOURCE },
        );
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        const limit = typeof err.body.limit === "string" ? ` (adapters.notify.limits.${err.body.limit})` : "";
        throw new GatewayError("not-acceptable", `The notice was not sent: ${err.message}${limit}.`);
      }
      return (JSON.parse(answer) as { id: string }).id;
    },

    async recent(limit) {
      const out: AlertSummary[] = [];
      // The index written at creation, newest first: no scan of the alert keys.
      for (const id of await store.recent(limit)) {
        const alert = await store.get(id);
        if (!alert) continue;
        const states = await store.states(id);
        const shown = alert.recipients.slice(0, RECIPIENTS_SHOWN).map((jid) => recipientLine(jid, states));
        const rest = alert.recipients.length - shown.length;
        if (rest > 0) {
          const acked = alert.recipients
            .slice(RECIPIENTS_SHOWN)
            .filter((jid) => states[`${jid} ack`] !== undefined).length;
          shown.push(`and ${rest} more (${acked} acknowledged)`);
        }
        out.push({
          id,
          createdAt: alert.createdAt,
          source: alert.source,
          severity: alert.severity,
          status: alert.status,
          title: alert.title,
          recipients: shown,
        });
      }
      return out;
    },
  };
}
