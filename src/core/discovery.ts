/**
 * Service discovery and the small informational iqs every adapter domain answers: XEP-0030 disco#info and
 * disco#items, XEP-0092 version, XEP-0199 ping, XEP-0100 §6 jabber:iq:gateway.
 */
import { xml, type Component, type Element } from "@xmpp/component";
import type { AddressQuery } from "../adapter.js";
import { CAPS_NODE, NS } from "../xmpp/ns.js";
import { discoInfo, discoItems, rsmSet, type Identity } from "../xmpp/stanzas.js";
import { pageOf, parseRsm } from "../xmpp/rsm.js";
import { GatewayError } from "../xmpp/errors.js";
import { EMPTY_RESULT, guardIq } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";
import { commandInfo, commandItems } from "./commands.js";

export function serviceFeatures(svc: Pick<ServiceContext, "adapter">): string[] {
  const { adapter } = svc;
  return [
    NS.DISCO_INFO,
    NS.DISCO_ITEMS,
    NS.GATEWAY,
    NS.VERSION,
    NS.PING,
    NS.COMMANDS,
    NS.JID_ESCAPING,
    NS.RECEIPTS,
    NS.STANZA_ID,
    ...(adapter.registration ? [NS.REGISTER] : []),
    ...(adapter.features ?? []),
  ];
}

/** What a contact on the foreign network looks like to disco (so clients know receipts work). */
const CONTACT_FEATURES = [NS.DISCO_INFO, NS.RECEIPTS, NS.PING];

/**
 * Items one disco#items answer holds when the requester asks for no page size (biboumi also sends 100), and
 * the most it may ask for: a stanza of thousands of items is more than clients and servers handle well.
 */
export const DISCO_ITEMS_PAGE = { defaultMax: 100, maxMax: 500 } as const;

/** The requester and the address of a disco query, for the adapter. */
function addressQuery(stanza: Element): AddressQuery {
  const from = stanza.attrs.from ?? "";
  return { from, user: bareOf(from), toJid: bareOf(stanza.attrs.to ?? "") };
}

export function mountDiscovery(callee: Component["iqCallee"], svc: ServiceContext): void {
  const { log } = svc;

  callee.get(
    NS.DISCO_INFO,
    "query",
    guardIq(log, async (ctx) => {
      const node = ctx.element.attrs.node;
      const from = bareOf(ctx.stanza.attrs.from ?? "");
      // XEP-0115 §6.2: the caps node answers with the same identity and features.
      if (node === `${CAPS_NODE}#${svc.capsVer}`) return discoInfo([svc.identity], svc.features, node);
      if (node) return commandInfo(svc, from, node);
      if (ctx.to?.local) {
        svc.adapter.codec.decode(ctx.to.local); // item-not-found / jid-malformed for a bad address
        const own = await svc.adapter.discoInfo?.(addressQuery(ctx.stanza));
        if (own) return discoInfo(own.identities, own.features);
        const contact: Identity = { category: "client", type: "pc", name: ctx.to.getLocal(true) };
        return discoInfo([contact], CONTACT_FEATURES);
      }
      return discoInfo([svc.identity], svc.features);
    }),
  );

  callee.get(
    NS.DISCO_ITEMS,
    "query",
    guardIq(log, async (ctx) => {
      const node = ctx.element.attrs.node;
      const from = bareOf(ctx.stanza.attrs.from ?? "");
      if (node === NS.COMMANDS) return commandItems(svc, from);
      if (node) throw new GatewayError("item-not-found", `There is no node "${node}" here.`);
      const query = addressQuery(ctx.stanza);
      if (!svc.adapter.discoItems || (!ctx.to?.local && !svc.access.allows(from))) return discoItems([]);
      svc.access.check(from);
      if (ctx.to?.local) svc.adapter.codec.decode(ctx.to.local); // a bad address: item-not-found
      const items = await svc.adapter.discoItems(query);
      if (!items) return discoItems([]);
      // XEP-0059: a long list (an IRC network's channels) comes a page at a time.
      const page = pageOf(items, (i) => i.jid, parseRsm(ctx.element), DISCO_ITEMS_PAGE);
      return discoItems(page.items, undefined, rsmSet(page));
    }),
  );

  callee.get(
    NS.VERSION,
    "query",
    guardIq(log, () =>
      xml("query", { xmlns: NS.VERSION }, xml("name", {}, "xmpp-gateway"), xml("version", {}, svc.version)),
    ),
  );

  callee.get(
    NS.PING,
    "ping",
    guardIq(log, () => EMPTY_RESULT),
  );

  callee.get(
    NS.GATEWAY,
    "query",
    guardIq(log, () =>
      xml(
        "query",
        { xmlns: NS.GATEWAY },
        xml("desc", {}, svc.adapter.prompt.desc),
        xml("prompt", {}, svc.adapter.prompt.prompt),
      ),
    ),
  );

  callee.set(
    NS.GATEWAY,
    "query",
    guardIq(log, (ctx) => {
      const prompt = ctx.element.getChildText("prompt")?.trim();
      if (!prompt) throw new GatewayError("bad-request", "Send the address to translate in <prompt/>.");
      const { codec } = svc.adapter;
      const local = codec.encode(codec.fromPrompt(prompt));
      // XEP-0100 §6.3: answer with <jid/> (the older <prompt/> answer is obsolete).
      return xml("query", { xmlns: NS.GATEWAY }, xml("jid", {}, `${local}@${svc.domain}`));
    }),
  );
}
