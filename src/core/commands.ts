/**
 * XEP-0050 ad-hoc commands. Commands are stateless two-step exchanges: `execute` returns the form (or runs at
 * once when the command has none); submitting it runs the command and completes, unless the command asks for a
 * next step (CommandResult.next: a confirmation), whose form carries everything the next run needs. Admin commands are hidden
 * from everybody who is not in the config's admins list.
 */
import { randomUUID } from "node:crypto";
import { xml, type Component, type Element } from "@xmpp/component";
import type { AdhocCommand } from "../adapter.js";
import { NS } from "../xmpp/ns.js";
import { GatewayError } from "../xmpp/errors.js";
import { checkAgainstForm, readSubmittedForm } from "../xmpp/forms.js";
import { dataForm, discoInfo, discoItems } from "../xmpp/stanzas.js";
import { guardIq } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";

function visible(svc: ServiceContext, user: string): AdhocCommand[] {
  if (!svc.access.allows(user)) return [];
  const admin = svc.access.isAdmin(user);
  return svc.commands.filter((c) => !c.admin || admin);
}

function find(svc: ServiceContext, user: string, node: string): AdhocCommand {
  const command = svc.commands.find((c) => c.node === node);
  if (!command) throw new GatewayError("item-not-found", `There is no command "${node}".`);
  svc.access.check(user);
  if (command.admin && !svc.access.isAdmin(user))
    throw new GatewayError("forbidden", `"${command.name}" is for the gateway's administrators only.`);
  return command;
}

export function commandItems(svc: ServiceContext, user: string): Element {
  return discoItems(
    visible(svc, user).map((c) => ({ jid: svc.domain, node: c.node, name: c.name })),
    NS.COMMANDS,
  );
}

export function commandInfo(svc: ServiceContext, user: string, node: string): Element {
  if (node === NS.COMMANDS)
    return discoInfo([{ category: "automation", type: "command-list", name: "Commands" }], [], node);
  const command = find(svc, user, node);
  return discoInfo(
    [{ category: "automation", type: "command-node", name: command.name }],
    [NS.COMMANDS, NS.DATA_FORMS],
    node,
  );
}

export function mountCommands(callee: Component["iqCallee"], svc: ServiceContext): void {
  callee.set(
    NS.COMMANDS,
    "command",
    guardIq(svc.log, async (ctx) => {
      const user = bareOf(ctx.stanza.attrs.from ?? "");
      const node = ctx.element.attrs.node ?? "";
      const action = ctx.element.attrs.action ?? "execute";
      const sessionid = ctx.element.attrs.sessionid ?? randomUUID();
      const command = find(svc, user, node);
      const reply = (status: string, ...children: (Element | null)[]) =>
        xml("command", { xmlns: NS.COMMANDS, node, sessionid, status }, ...children);

      if (action === "cancel") return reply("canceled");
      if (!["execute", "complete", "next"].includes(action))
        throw new GatewayError("bad-request", `This command does not support the action "${action}".`);

      const submitted = readSubmittedForm(ctx.element);
      const to = ctx.stanza.attrs.to;
      const form = command.form ? await command.form(user, to) : undefined;
      if (form && !submitted) {
        return reply(
          "executing",
          xml("actions", { execute: "complete" }, xml("complete")),
          dataForm(form, "form"),
        );
      }
      const values = submitted ?? {};
      if (form) checkAgainstForm(form, values);
      const result = await command.run(user, values, to);
      // A next step (XEP-0050 §3.4): the same session goes on with the filled-in form.
      if (result.next)
        return reply(
          "executing",
          xml("actions", { execute: "complete" }, xml("complete")),
          xml("note", { type: result.noteType ?? "info" }, result.note),
          dataForm(result.next, "form"),
        );
      return reply(
        "completed",
        xml("note", { type: result.noteType ?? "info" }, result.note),
        result.form ? dataForm(result.form, "result") : null,
      );
    }),
  );
}
