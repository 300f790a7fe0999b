/**
 * XEP-0313 (Message Archive Management, urn:xmpp:mam:2) on the rooms of an adapter that keeps room archives:
 * the core parses the query (XEP-0004 form with start/end/with, XEP-0059 RSM paging), the adapter finds the
 * lines (Adapter.archive), and the core sends each as a forwarded result before the iq's `<fin/>`.
 */
import { xml, type Component, type Element } from "@xmpp/component";
import type { ArchiveQuery } from "../adapter.js";
import { NS } from "../xmpp/ns.js";
import { GatewayError } from "../xmpp/errors.js";
import { readSubmittedForm, single } from "../xmpp/forms.js";
import { dataForm, mamFin, mamResult } from "../xmpp/stanzas.js";
import { guardIq } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";

/** Lines in one MAM page when the query names no `<max/>` (XEP-0313 §5.1.2: the server picks). */
export const MAM_DEFAULT_PAGE = 50;
/** Most lines in one MAM page; a larger `<max/>` is lowered to it (XEP-0059 §2.1 lets the responder). */
export const MAM_MAX_PAGE = 250;
/** Longest queryid accepted (it is echoed in every result). */
const MAX_QUERY_ID_CHARS = 256;

const FORM_FIELDS = new Set(["FORM_TYPE", "start", "end", "with"]);

function date(value: string, field: string): Date | undefined {
  if (value === "") return undefined;
  // XEP-0082 date-time: the zone is required.
  const ok = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value);
  const parsed = new Date(value);
  if (!ok || Number.isNaN(parsed.getTime()))
    throw new GatewayError(
      "bad-request",
      `"${field}" must be an XEP-0082 date-time such as 2024-01-31T12:00:00Z.`,
    );
  return parsed;
}

/** The query of an iq set, or a typed bad-request saying what is wrong with it. */
export function parseMamQuery(query: Element, user: string, room: string): ArchiveQuery {
  const values = readSubmittedForm(query) ?? {};
  for (const name of Object.keys(values))
    if (!FORM_FIELDS.has(name))
      throw new GatewayError("bad-request", `This archive does not filter by "${name}".`);
  const formType = single(values, "FORM_TYPE");
  if (formType !== "" && formType !== NS.MAM)
    throw new GatewayError("bad-request", `The form's FORM_TYPE must be ${NS.MAM}.`);
  const q: ArchiveQuery = { user, room, max: MAM_DEFAULT_PAGE };
  const start = date(single(values, "start"), "start");
  const end = date(single(values, "end"), "end");
  if (start) q.start = start;
  if (end) q.end = end;
  const withJid = single(values, "with");
  if (withJid !== "") {
    if (bareOf(withJid).toLowerCase() !== room.toLowerCase())
      throw new GatewayError("bad-request", `"with" must be an occupant of this room: ${room}/nick.`);
    const nick = withJid.slice(withJid.indexOf("/") + 1);
    if (withJid.includes("/") && nick !== "") q.withNick = nick;
  }
  const set = query.getChild("set", NS.RSM);
  if (set) {
    const max = set.getChildText("max");
    if (max !== null) {
      if (!/^\d{1,9}$/.test(max.trim()))
        throw new GatewayError("bad-request", "<max/> must be a whole number.");
      q.max = Math.min(Number(max.trim()), MAM_MAX_PAGE);
    }
    const after = set.getChild("after");
    const before = set.getChild("before");
    if (after && before)
      throw new GatewayError("bad-request", "Ask for the page <after/> an id or <before/> one, not both.");
    if (after) {
      const id = after.getText().trim();
      if (id === "") throw new GatewayError("bad-request", "<after/> needs the id of a result.");
      q.after = id;
    }
    if (before) q.before = before.getText().trim();
  }
  return q;
}

export function mountMam(callee: Component["iqCallee"], svc: ServiceContext): void {
  const archive = svc.adapter.archive;
  if (!archive) return;

  // XEP-0313 §5.1.1: the fields a query may use.
  callee.get(
    NS.MAM,
    "query",
    guardIq(svc.log, (ctx) => {
      svc.access.check(bareOf(ctx.stanza.attrs.from ?? ""));
      const form = dataForm(
        {
          fields: [
            { var: "start", type: "text-single", label: "Lines said at or after (XEP-0082 date-time)" },
            { var: "end", type: "text-single", label: "Lines said at or before (XEP-0082 date-time)" },
            { var: "with", type: "jid-single", label: "Lines of this occupant (room@domain/nick)" },
          ],
        },
        "form",
        NS.MAM,
      );
      return xml("query", { xmlns: NS.MAM }, form);
    }),
  );

  callee.set(
    NS.MAM,
    "query",
    guardIq(svc.log, async (ctx) => {
      const from = ctx.stanza.attrs.from ?? "";
      const user = bareOf(from);
      svc.access.check(user);
      const room = bareOf(ctx.stanza.attrs.to ?? svc.domain);
      if (!room.includes("@"))
        throw new GatewayError("item-not-found", "Ask a room's JID for its archive, not the gateway's.");
      const queryId = ctx.element.attrs.queryid;
      if (queryId !== undefined && queryId.length > MAX_QUERY_ID_CHARS)
        throw new GatewayError("bad-request", "The queryid is too long.");
      if (ctx.element.attrs.node)
        throw new GatewayError("item-not-found", "This archive has no nodes: query the room itself.");
      const page = await archive.query(parseMamQuery(ctx.element, user, room));
      // §5.1.2: every result before the iq result (one stream: the server keeps the order).
      for (const line of page.lines) await svc.link.send(mamResult({ to: from, room, queryId, line }));
      return mamFin(page);
    }),
  );
}
