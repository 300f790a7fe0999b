/**
 * The admins' notice composer (an admin ad-hoc command, so the admin page shows it as a form): a notice to one
 * user, a group or everyone registered with the gateway, sent as an alert through the notify engine. It asks
 * first: the next step says how many people it reaches and goes out only when the admin types that number
 * back. Notices are limited per hour (config people.noticesPerHour) for the whole gateway.
 *
 * "Recent alerts" is a report: the latest alerts with each recipient's state per channel, never their text.
 */
import type { RedisClient } from "../../../src/store/redis-client.js";
import type { AdhocCommand, Form, FormValues, KeyBuilder } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";
import { single } from "../../../src/xmpp/forms.js";
import { checkGroupName, type GroupStore } from "./groups.js";
import type { PeopleConfig } from "./limits.js";

export const NOTICE_NODE = "notify-notice";
export const SEVERITIES = ["info", "warning", "critical"] as const;
export type NoticeSeverity = (typeof SEVERITIES)[number];
/** Recipients named in the confirmation (the rest is counted). */
export const CONFIRM_NAMES_SHOWN = 5;
/** Alerts the "Recent alerts" report lists. */
export const RECENT_ALERTS_SHOWN = 20;
/** Alert ids kept in the recent list (key("recent")); older ones drop off. */
export const RECENT_ALERTS_KEPT = 100;

const HOUR_MS = 3_600_000;
const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;

export interface Notice {
  recipients: string[];
  title: string;
  text: string;
  severity: NoticeSeverity;
}

/** One alert as the report shows it: no text. */
export interface AlertSummary {
  id: string;
  createdAt: string;
  source: string;
  severity: string;
  status: string;
  title: string;
  /** Per recipient, e.g. "alice@example.org: xmpp delivered, sms sent (acknowledged)". */
  recipients: string[];
}

export interface NoticeDeps {
  redis: RedisClient;
  key: KeyBuilder;
  groups: GroupStore;
  config: PeopleConfig;
  /** Every user registered with any adapter. */
  everyone: () => Promise<string[]>;
  /** Hands the notice to the notify engine; resolves with the alert id once it is durable. */
  submit: (notice: Notice) => Promise<string>;
  /** The latest alerts, newest first. */
  recent: (limit: number) => Promise<AlertSummary[]>;
  /** Counts a notice: sent, or refused by the hourly limit. */
  counted: (outcome: "sent" | "refused_limit") => void;
}

// KEYS: the hour's counter. ARGV: limit, ttl ms. 1 counted, 0 refused (nothing counted).
const TAKE = `
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

function noticeForm(values: FormValues = {}, confirm?: { count: number }): Form {
  const v = (name: string) => single(values, name);
  const text = values.text;
  return {
    title: "Send a notice",
    instructions: confirm
      ? `Check the notice, then type ${confirm.count} in "Confirm" to send it to ${confirm.count} people.`
      : "A notice goes out as an alert (XMPP first, then as the escalation policy says). The next page says how " +
        "many people it reaches and asks you to confirm.",
    fields: [
      {
        var: "audience",
        type: "list-single",
        label: "To",
        required: true,
        options: [
          { label: "One user", value: "user" },
          { label: "A group", value: "group" },
          { label: "Everyone registered with the gateway", value: "everyone" },
        ],
        value: v("audience") || "user",
      },
      { var: "to", type: "text-single", label: "User (bare JID) or group name", value: v("to") },
      { var: "title", type: "text-single", label: "Title", required: true, value: v("title") },
      {
        var: "text",
        type: "text-multi",
        label: "Text",
        value: Array.isArray(text) ? text : text ? [text] : [],
      },
      {
        var: "severity",
        type: "list-single",
        label: "Severity",
        required: true,
        options: SEVERITIES.map((s) => ({ label: s, value: s })),
        value: v("severity") || "info",
      },
      {
        var: "confirm",
        type: "text-single",
        label: "Confirm: the number of people",
        desc: confirm ? `Type ${confirm.count} to send.` : "Leave empty: the next page tells the number.",
        value: "",
      },
    ],
  };
}

export function noticeCommands(deps: () => NoticeDeps): AdhocCommand[] {
  async function recipientsOf(values: FormValues): Promise<string[]> {
    const { groups, everyone } = deps();
    const audience = single(values, "audience");
    const to = single(values, "to");
    if (audience === "everyone") return everyone();
    if (!to)
      throw new GatewayError("not-acceptable", audience === "group" ? "Name the group." : "Name the user.");
    if (audience === "group") {
      const name = checkGroupName(to);
      const members = await groups.members(name);
      if (!members.length)
        throw new GatewayError("item-not-found", `There is no group "${name}", or it is empty.`);
      return members;
    }
    const jid = to.toLowerCase();
    if (!BARE_JID.test(jid)) throw new GatewayError("jid-malformed", `"${to}" is not a bare JID.`);
    return [jid];
  }

  return [
    {
      node: NOTICE_NODE,
      name: "Send a notice",
      admin: true,
      form: () => noticeForm(),
      async run(_admin, values) {
        const { redis, key, config, submit, counted } = deps();
        const title = single(values, "title");
        const raw = values.text;
        const text = (Array.isArray(raw) ? raw : [raw ?? ""]).join("\n").trim();
        const severity = single(values, "severity") as NoticeSeverity;
        if (!SEVERITIES.includes(severity))
          throw new GatewayError("not-acceptable", `Severity must be one of ${SEVERITIES.join(", ")}.`);
        const recipients = await recipientsOf(values);
        if (recipients.length === 0)
          throw new GatewayError("not-acceptable", "Nobody would receive this notice.");
        const count = recipients.length;
        const confirm = single(values, "confirm");
        if (confirm !== String(count)) {
          const names = recipients.slice(0, CONFIRM_NAMES_SHOWN).join(", ");
          const more = count > CONFIRM_NAMES_SHOWN ? ` and ${count - CONFIRM_NAMES_SHOWN} more` : "";
          return {
            note:
              (confirm ? `The number does not match: this notice now reaches ${count} people. ` : "") +
              `Send "${title}" to ${count} ${count === 1 ? "person" : "people"} (${names}${more})?`,
            noteType: "warn",
            next: noticeForm(values, { count }),
          };
        }
        const now = Date.now();
        const hour = Math.floor(now / HOUR_MS);
        const taken = await redis.eval(
          TAKE,
          1,
          key("notices", String(hour)),
          config.noticesPerHour,
          (hour + 1) * HOUR_MS - now + 60_000,
        );
        if (taken !== 1) {
          counted("refused_limit");
          throw new GatewayError(
            "policy-violation",
            `${config.noticesPerHour} notices have been sent this hour, the most allowed (people.noticesPerHour); ` +
              `try again after ${new Date((hour + 1) * HOUR_MS).toISOString().slice(11, 16)} UTC. Nothing was sent.`,
            { type: "wait" },
          );
        }
        const id = await submit({ recipients, title, text, severity });
        counted("sent");
        return { note: `Notice ${id} is on its way to ${count} ${count === 1 ? "person" : "people"}.` };
      },
    },
    {
      node: "notify-recent",
      name: "Recent alerts",
      admin: true,
      report: true,
      async run() {
        const alerts = await deps().recent(RECENT_ALERTS_SHOWN);
        return {
          note: alerts.length ? `The latest ${alerts.length} alert(s), newest first.` : "No alerts yet.",
          form: {
            title: "Recent alerts",
            fields: alerts.map((a) => ({
              var: `alert-${a.id}`,
              type: "text-multi" as const,
              label: `${a.createdAt.replace("T", " ").slice(0, 19)} ${a.severity} from ${a.source}: ${a.title} (${a.id}, ${a.status})`,
              value: a.recipients,
            })),
          },
        };
      },
    },
  ];
}
