/** The core's own XEP-0050 commands, offered on every adapter domain next to the adapter's. */
import type { AdhocCommand } from "../adapter.js";
import { GatewayError } from "../xmpp/errors.js";
import { single } from "../xmpp/forms.js";
import type { ServiceContext } from "./context.js";
import { unregisterUser } from "./registration.js";

/** Most users listed by one "registered users" answer. */
export const MAX_LISTED_USERS = 500;

export function coreCommands(svc: () => ServiceContext): AdhocCommand[] {
  return [
    {
      node: "registered-users",
      name: "List registered users",
      admin: true,
      async run() {
        const users = (await svc().registrations.list()).sort();
        const shown = users.slice(0, MAX_LISTED_USERS);
        return {
          note: `${users.length} user(s) registered with ${svc().domain}${users.length > shown.length ? `; the first ${shown.length} are shown` : ""}.`,
          form: {
            title: "Registered users",
            fields: [{ var: "users", type: "text-multi", label: "Users", value: shown }],
          },
        };
      },
    },
    {
      node: "unregister-user",
      name: "Remove a user's registration",
      admin: true,
      form: () => ({
        title: "Remove a user's registration",
        instructions: "Everything the gateway stores for the user on this service is deleted.",
        fields: [{ var: "jid", type: "jid-single", label: "User (bare JID)", required: true }],
      }),
      async run(_admin, values) {
        const jid = single(values, "jid").toLowerCase();
        if (!/^[^@/\s]+@[^@/\s]+$/.test(jid))
          throw new GatewayError("jid-malformed", `"${jid}" is not a bare JID such as user@example.org.`);
        const removed = await unregisterUser(svc(), jid);
        return removed
          ? { note: `${jid} is no longer registered with ${svc().domain}.` }
          : { note: `${jid} was not registered with ${svc().domain}.`, noteType: "warn" };
      },
    },
  ];
}
