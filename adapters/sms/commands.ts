/** Administrators' XEP-0050 commands for the SMS numbers: assign, unassign, list. */
import type { AdhocCommand } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import type { NumberDirectory } from "./numbers.js";

const E164 = /^\+[1-9]\d{7,14}$/;
const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;

function number(value: string): string {
  if (!E164.test(value))
    throw new GatewayError("not-acceptable", `"${value}" is not an E.164 number like +12025550123.`);
  return value;
}

export function adminCommands(numbers: () => NumberDirectory, pool: readonly string[]): AdhocCommand[] {
  return [
    {
      node: "sms-assign",
      name: "Assign an SMS number to a user",
      admin: true,
      form: () => ({
        title: "Assign an SMS number",
        instructions: "Texts to the number will reach the user, who can then send from it.",
        fields: [
          { var: "number", type: "text-single", label: "Number (E.164)", required: true },
          { var: "jid", type: "jid-single", label: "User (bare JID)", required: true },
        ],
      }),
      async run(_admin, values) {
        const jid = single(values, "jid").toLowerCase();
        if (!BARE_JID.test(jid)) throw new GatewayError("jid-malformed", `"${jid}" is not a bare JID.`);
        const n = number(single(values, "number"));
        await numbers().assign(n, jid);
        return { note: `${n} now belongs to ${jid}.` };
      },
    },
    {
      node: "sms-unassign",
      name: "Take an SMS number back",
      admin: true,
      form: () => ({
        title: "Take an SMS number back",
        fields: [{ var: "number", type: "text-single", label: "Number (E.164)", required: true }],
      }),
      async run(_admin, values) {
        const n = number(single(values, "number"));
        return (await numbers().unassign(n))
          ? { note: `${n} no longer belongs to anyone.` }
          : { note: `${n} was not assigned.`, noteType: "warn" };
      },
    },
    {
      node: "sms-numbers",
      name: "List SMS numbers",
      admin: true,
      report: true,
      async run() {
        const assigned = Object.entries(await numbers().assignments()).map(
          ([n, jid]) => `${n} → ${jid}${numbers().isConfigured(n) ? " (config)" : ""}`,
        );
        return {
          note: `${assigned.length} dedicated number(s), ${pool.length} shared.`,
          form: {
            title: "SMS numbers",
            fields: [
              { var: "dedicated", type: "text-multi", label: "Dedicated", value: assigned.sort() },
              { var: "pool", type: "text-multi", label: "Shared pool", value: [...pool] },
            ],
          },
        };
      },
    },
  ];
}
