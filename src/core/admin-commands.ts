/** The core's own XEP-0050 commands, offered on every adapter domain next to the adapter's. */
import { randomUUID } from "node:crypto";
import type { AdhocCommand } from "../adapter.js";
import { GatewayError } from "../xmpp/errors.js";
import { single } from "../xmpp/forms.js";
import type { ServiceContext } from "./context.js";
import { unregisterUser } from "./registration.js";

/** Most users listed by one "registered users" answer. */
export const MAX_LISTED_USERS = 500;
/** Longest text of a test message (it is typed by an admin; keep it to a line or two). */
export const MAX_TEST_MESSAGE_CHARS = 500;
/** What a test message says when the admin leaves the text empty. */
export const DEFAULT_TEST_MESSAGE = "Test message from the gateway: if you can read this, delivery works.";

const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;
// A bare JID with an optional resource (the resource may hold spaces and slashes, not control characters).
// eslint-disable-next-line no-control-regex
const JID = /^[^@/\s]+@[^@/\s]+(\/[^\u0000-\u001f\u007f]{1,1023})?$/;

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
        if (!BARE_JID.test(jid))
          throw new GatewayError("jid-malformed", `"${jid}" is not a bare JID such as user@example.org.`);
        const removed = await unregisterUser(svc(), jid);
        return removed
          ? { note: `${jid} is no longer registered with ${svc().domain}.` }
          : { note: `${jid} was not registered with ${svc().domain}.`, noteType: "warn" };
      },
    },
    {
      node: "send-test-message",
      name: "Send a test message",
      admin: true,
      form: () => ({
        title: "Send a test message",
        instructions:
          `A chat message from ${svc().domain} goes to the JID through the same queue as messages from the ` +
          "network: it shows whether the gateway reaches the user.",
        fields: [
          { var: "jid", type: "jid-single", label: "To (JID)", required: true },
          { var: "text", type: "text-single", label: "Text", value: DEFAULT_TEST_MESSAGE },
        ],
      }),
      async run(_admin, values) {
        const jid = single(values, "jid");
        if (!JID.test(jid))
          throw new GatewayError("jid-malformed", `"${jid}" is not a JID such as user@example.org.`);
        const text = single(values, "text") || DEFAULT_TEST_MESSAGE;
        if ([...text].length > MAX_TEST_MESSAGE_CHARS)
          throw new GatewayError(
            "not-acceptable",
            `The text is longer than ${MAX_TEST_MESSAGE_CHARS} characters.`,
          );
        const id = `test-${randomUUID()}`;
        const { inbox, domain, metrics, key } = svc();
        await inbox.enqueue(domain, { kind: "message", to: jid, from: domain, id, type: "chat", body: text });
        metrics.message(key, "in", "stored");
        return {
          note: `A test message (id ${id}) from ${domain} to ${jid} is queued; it arrives while the component stream is up.`,
        };
      },
    },
  ];
}
