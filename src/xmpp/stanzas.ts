/**
 * Every stanza the gateway sends is built here, with xml(); never string templates, never raw writes.
 */
import { xml as rawXml, type Element, type XmlChild } from "@xmpp/component";
import { createHash, randomUUID } from "node:crypto";
import type { ArchivedLine, ArchivePage, Attachment, Form, InboundEvent, PresenceEvent } from "../adapter.js";
import { NS, CAPS_NODE } from "./ns.js";
import type { ErrorCondition, ErrorType } from "./errors.js";

export type { Element };

/**
 * Removes what XML 1.0 cannot carry (control characters other than tab/CR/LF, U+FFFE/U+FFFF, lone
 * surrogates). A single such character from an SMS, a mail or an IRC line would make the XMPP server close
 * the whole component stream.
 */
export function xmlSafe(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    "",
  );
}

function safeChild(child: XmlChild): XmlChild {
  if (typeof child === "string") return xmlSafe(child);
  if (Array.isArray(child)) return child.map(safeChild);
  return child;
}

/**
 * xml() for this module: every attribute value and text child goes through xmlSafe, whatever its source
 * (network ids, IRC tags, webhook fields), so no value can make the server close the component stream.
 */
function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: XmlChild[]) {
  const safe: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(attrs ?? {}))
    safe[key] = typeof value === "string" ? xmlSafe(value) : value;
  return rawXml(name, safe, ...children.map(safeChild));
}

export interface Identity {
  category: string;
  type: string;
  name: string;
}

/** RFC 6120 §8.3.2: <error type><condition/><text>human text</text></error>. */
export function stanzaError(condition: ErrorCondition, type: ErrorType, text: string): Element {
  return xml(
    "error",
    { type },
    xml(condition, { xmlns: NS.STANZAS }),
    xml("text", { xmlns: NS.STANZAS, "xml:lang": "en" }, xmlSafe(text)),
  );
}

/** A message or presence error answering `original`, echoing its id (RFC 6120 §8.3.1). */
export function errorReply(original: Element, error: Element): Element {
  return xml(
    original.name,
    { type: "error", to: original.attrs.from, from: original.attrs.to, id: original.attrs.id },
    error,
  );
}

function oob(attachments: Attachment[] | undefined) {
  return (attachments ?? []).map((a) =>
    xml(
      "x",
      { xmlns: NS.OOB },
      xml("url", {}, xmlSafe(a.url)),
      a.desc ? xml("desc", {}, xmlSafe(a.desc)) : null,
    ),
  );
}

/** The stanza for a durable inbound event (see InboundEvent). */
export function inboundStanza(event: InboundEvent): Element {
  switch (event.kind) {
    case "message":
      return xml(
        "message",
        { to: event.to, from: event.from, id: event.id, type: event.type ?? "chat" },
        event.subject === undefined ? null : xml("subject", {}, xmlSafe(event.subject)),
        // A subject change alone (an IRC topic, XEP-0045 §8.1) carries no body.
        event.body === "" && event.subject !== undefined ? null : xml("body", {}, xmlSafe(event.body)),
        event.thread === undefined ? null : xml("thread", {}, xmlSafe(event.thread)),
        ...oob(event.attachments),
        event.nick === undefined ? null : xml("nick", { xmlns: NS.NICK }, xmlSafe(event.nick)),
        event.delay === undefined
          ? null
          : xml("delay", { xmlns: NS.DELAY, from: event.from.split("/")[0], stamp: event.delay }),
        event.requestReceipt ? xml("request", { xmlns: NS.RECEIPTS }) : null,
        event.markable ? xml("markable", { xmlns: NS.MARKERS }) : null,
        event.replaces === undefined ? null : xml("replace", { xmlns: NS.CORRECT, id: event.replaces }),
        // XEP-0359: the gateway's stable id, so clients can drop a redelivered copy; for an archived room line
        // the archive's id, by the room (XEP-0313 §5.2), so the MAM copy and the live one are one message.
        xml("stanza-id", {
          xmlns: NS.STANZA_ID,
          id: event.archiveId ?? event.id,
          by:
            event.archiveId === undefined
              ? event.from.split("/")[0]?.split("@").pop()
              : event.from.split("/")[0],
        }),
      );
    case "receipt":
      return receipt(event.from, event.to, event.id, event.receiptFor);
    case "error":
      return xml(
        "message",
        { to: event.to, from: event.from, id: event.id, type: "error" },
        stanzaError(event.condition, errorTypeFor(event.condition), event.text),
      );
    case "presence":
      return presenceStanza(event);
  }
}

/** XEP-0045 §7.2: occupant presence with the muc#user item, status codes and (type error) the reason. */
function presenceStanza(event: PresenceEvent): Element {
  const { muc } = event;
  return xml(
    "presence",
    { to: event.to, from: event.from, id: event.id, type: event.type },
    event.show === undefined ? null : xml("show", {}, event.show),
    event.status === undefined ? null : xml("status", {}, xmlSafe(event.status)),
    muc === undefined
      ? null
      : xml(
          "x",
          { xmlns: NS.MUC_USER },
          xml(
            "item",
            {
              affiliation: muc.affiliation,
              role: muc.role,
              jid: muc.jid,
              nick: muc.nick === undefined ? undefined : xmlSafe(muc.nick),
            },
            // XEP-0045 §9.1: a kick names who did it and why.
            muc.actor === undefined ? null : xml("actor", { nick: xmlSafe(muc.actor) }),
            muc.reason === undefined ? null : xml("reason", {}, xmlSafe(muc.reason)),
          ),
          ...(muc.statusCodes ?? []).map((code) => xml("status", { code: String(code) })),
        ),
    event.error === undefined
      ? null
      : stanzaError(event.error.condition, errorTypeFor(event.error.condition), event.error.text),
  );
}

function errorTypeFor(condition: ErrorCondition): ErrorType {
  if (condition === "remote-server-timeout" || condition === "recipient-unavailable") return "wait";
  if (condition === "forbidden" || condition === "registration-required") return "auth";
  if (condition === "not-acceptable" || condition === "policy-violation" || condition === "jid-malformed")
    return "modify";
  return "cancel";
}

/** XEP-0184 §4: <received id=…/> for the message `receiptFor`. */
export function receipt(from: string, to: string, id: string, receiptFor: string): Element {
  return xml("message", { from, to, id }, xml("received", { xmlns: NS.RECEIPTS, id: receiptFor }));
}

export function chatMessage(from: string, to: string, id: string, body: string): Element {
  return xml("message", { from, to, id, type: "chat" }, xml("body", {}, xmlSafe(body)));
}

export function presence(
  from: string,
  to: string,
  attrs: { type?: string; id?: string } = {},
  ...children: (Element | null)[]
): Element {
  return xml("presence", { from, to, ...attrs }, ...children);
}

export function iq(attrs: { type: string; to: string; from?: string; id?: string }, child: Element): Element {
  return xml("iq", attrs, child);
}

export function ping(): Element {
  return xml("ping", { xmlns: NS.PING });
}

export function discoInfo(identities: Identity[], features: readonly string[], node?: string): Element {
  return xml(
    "query",
    { xmlns: NS.DISCO_INFO, node },
    ...identities.map((i) => xml("identity", { category: i.category, type: i.type, name: i.name })),
    ...features.map((f) => xml("feature", { var: f })),
  );
}

export function discoItems(
  items: { jid: string; node?: string; name: string }[],
  node?: string,
  ...extra: Element[]
): Element {
  return xml("query", { xmlns: NS.DISCO_ITEMS, node }, ...items.map((i) => xml("item", i)), ...extra);
}

/** XEP-0059 §2.1 answer: `<set><first index/><last/><count/></set>` (first and last only for a non-empty page). */
export function rsmSet(page: { count: number; firstIndex: number; first?: string; last?: string }): Element {
  return xml(
    "set",
    { xmlns: NS.RSM },
    ...(page.first === undefined ? [] : [xml("first", { index: String(page.firstIndex) }, page.first)]),
    ...(page.last === undefined ? [] : [xml("last", {}, page.last)]),
    xml("count", {}, String(page.count)),
  );
}

/** XEP-0115 §5.1 verification string for identities and features (no extended forms). */
export function capsVer(identities: Identity[], features: readonly string[]): string {
  const ids = identities.map((i) => `${i.category}/${i.type}//${i.name}`).sort();
  const s = [...ids, ...[...new Set(features)].sort()].map((x) => `${x}<`).join("");
  return createHash("sha1").update(s, "utf8").digest("base64");
}

export function caps(ver: string): Element {
  return xml("c", { xmlns: NS.CAPS, hash: "sha-1", node: CAPS_NODE, ver });
}

/** XEP-0004 form. `type` is "form" for questions, "result" for answers. */
export function dataForm(form: Form, type: "form" | "result" = "form", formType?: string): Element {
  return xml(
    "x",
    { xmlns: NS.DATA_FORMS, type },
    form.title === undefined ? null : xml("title", {}, form.title),
    form.instructions === undefined ? null : xml("instructions", {}, form.instructions),
    formType === undefined
      ? null
      : xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, formType)),
    ...form.fields.map((f) =>
      xml(
        "field",
        { var: f.var, type: f.type, label: f.label },
        f.desc === undefined ? null : xml("desc", {}, f.desc),
        f.required ? xml("required") : null,
        ...(f.value === undefined ? [] : Array.isArray(f.value) ? f.value : [f.value]).map((v) =>
          xml("value", {}, v),
        ),
        ...(f.options ?? []).map((o) => xml("option", { label: o.label }, xml("value", {}, o.value))),
      ),
    ),
  );
}

/**
 * XEP-0313 §5.1.2: one archived room line, forwarded (XEP-0297) with its XEP-0203 delay, from the room to the
 * user who queried; the inner message carries the same XEP-0359 stanza-id as the live copy did.
 */
export function mamResult(opts: {
  to: string;
  room: string;
  queryId: string | undefined;
  line: ArchivedLine;
}): Element {
  const { line, room } = opts;
  return xml(
    "message",
    { to: opts.to, from: room, id: randomUUID() },
    xml(
      "result",
      { xmlns: NS.MAM, queryid: opts.queryId, id: line.id },
      xml(
        "forwarded",
        { xmlns: NS.FORWARD },
        xml("delay", { xmlns: NS.DELAY, from: room, stamp: line.stamp }),
        xml(
          "message",
          {
            xmlns: NS.CLIENT,
            type: "groupchat",
            from: line.nick === undefined ? room : `${room}/${line.nick}`,
            id: line.id,
          },
          line.subject === undefined ? null : xml("subject", {}, xmlSafe(line.subject)),
          line.body === "" && line.subject !== undefined ? null : xml("body", {}, xmlSafe(line.body)),
          xml("stanza-id", { xmlns: NS.STANZA_ID, id: line.id, by: room }),
        ),
      ),
    ),
  );
}

/** XEP-0313 §5.1.2 `<fin/>` with the XEP-0059 set: first and last ids of the page, and the count if known. */
export function mamFin(page: ArchivePage): Element {
  const first = page.lines[0];
  const last = page.lines[page.lines.length - 1];
  return xml(
    "fin",
    { xmlns: NS.MAM, complete: page.complete ? "true" : undefined },
    xml(
      "set",
      { xmlns: NS.RSM },
      first === undefined ? null : xml("first", {}, first.id),
      last === undefined ? null : xml("last", {}, last.id),
      page.count === undefined ? null : xml("count", {}, String(page.count)),
    ),
  );
}
