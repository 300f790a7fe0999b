/** Administrators' XEP-0050 commands for users' addresses: list them, take one back. */
import type { AdhocCommand } from "../../src/adapter.js";
import { single } from "../../src/xmpp/forms.js";
import type { AliasDirectory } from "./aliases.js";

export function adminCommands(aliases: () => AliasDirectory, mailDomain: string): AdhocCommand[] {
  return [
    {
      node: "email-aliases",
      name: "List email addresses",
      admin: true,
      async run() {
        const all = Object.entries(await aliases().all())
          .map(([alias, jid]) => `${alias}@${mailDomain} → ${jid}`)
          .sort();
        return {
          note: `${all.length} address(es) on ${mailDomain}.`,
          form: {
            title: "Email addresses",
            fields: [{ var: "aliases", type: "text-multi", label: "Addresses", value: all }],
          },
        };
      },
    },
    {
      node: "email-alias-remove",
      name: "Take an email address back",
      admin: true,
      form: () => ({
        title: "Take an email address back",
        instructions: "Mail to it is refused from now on, and its user must register again to send mail.",
        fields: [
          { var: "alias", type: "text-single", label: `Alias (before @${mailDomain})`, required: true },
        ],
      }),
      async run(_admin, values) {
        const alias = single(values, "alias").toLowerCase().replace(`@${mailDomain}`, "");
        const owner = await aliases().remove(alias);
        return owner
          ? { note: `${alias}@${mailDomain} no longer belongs to ${owner}.` }
          : { note: `${alias}@${mailDomain} belongs to nobody.`, noteType: "warn" };
      },
    },
  ];
}
