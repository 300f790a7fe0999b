/**
 * The administrators' XEP-0050 commands for alert groups: define (name + members in rotation order),
 * rotate (the one on call moves to the end), delete, and a report listing them (shown on the admin page).
 */
import type { AdhocCommand } from "../../../src/adapter.js";
import { single } from "../../../src/xmpp/forms.js";
import { checkGroupName, checkMembers, type GroupStore } from "./groups.js";

/** Members shown per group in the report (the rest is counted). */
export const REPORT_MEMBERS_SHOWN = 10;

export function groupCommands(groups: () => GroupStore): AdhocCommand[] {
  const nameField = { var: "name", type: "text-single" as const, label: "Group name", required: true };
  return [
    {
      node: "notify-group-define",
      name: "Define an alert group",
      admin: true,
      form: () => ({
        title: "Define an alert group",
        instructions:
          "Members in rotation order, one bare JID per line: the first is on call. An existing group of " +
          "that name is replaced.",
        fields: [
          nameField,
          { var: "members", type: "text-multi", label: "Members (first = on call)", required: true },
        ],
      }),
      async run(_admin, values) {
        const name = checkGroupName(single(values, "name"));
        const raw = values.members;
        const members = checkMembers(Array.isArray(raw) ? raw : [raw ?? ""]);
        await groups().define(name, members);
        return { note: `Group "${name}" has ${members.length} member(s); ${members[0]} is on call.` };
      },
    },
    {
      node: "notify-group-rotate",
      name: "Rotate an alert group",
      admin: true,
      form: () => ({
        title: "Rotate an alert group",
        instructions: "The member on call moves to the end; the next one is on call.",
        fields: [nameField],
      }),
      async run(_admin, values) {
        const name = checkGroupName(single(values, "name"));
        const order = await groups().rotate(name);
        if (!order) return { note: `There is no group "${name}".`, noteType: "warn" };
        return {
          note: `${order[0]} is now on call in "${name}" (then ${order.slice(1, 3).join(", ") || "nobody"}).`,
        };
      },
    },
    {
      node: "notify-group-delete",
      name: "Delete an alert group",
      admin: true,
      form: () => ({ title: "Delete an alert group", fields: [nameField] }),
      async run(_admin, values) {
        const name = checkGroupName(single(values, "name"));
        return (await groups().delete(name))
          ? { note: `Group "${name}" is deleted.` }
          : { note: `There is no group "${name}".`, noteType: "warn" };
      },
    },
    {
      node: "notify-groups",
      name: "Alert groups",
      admin: true,
      report: true,
      async run() {
        const summary = await groups().summary();
        return {
          note: `${summary.length} group(s).`,
          form: {
            title: "Alert groups",
            fields: summary.map((g) => ({
              var: `group-${g.name}`,
              type: "text-single" as const,
              label: g.name,
              value: `${g.size} member(s); on call: ${g.onCall ?? "nobody"}`,
            })),
          },
        };
      },
    },
  ];
}
