/**
 * Email addresses as JID localparts: `friend@example.com` is the contact
 * `friend\40example.com@mail.example.org` (XEP-0106 §4), and `friend%example.com@mail.example.org` (the
 * percent hack older transports used) is accepted on input. The gateway writes only addresses it can put
 * on an SMTP envelope unchanged, so every check here is what RFC 5321/5322 require of one.
 */
import { escapeLocal, unescapeLocal } from "@xmpp/jid";
import type { IdCodec } from "../../src/adapter.js";
import { GatewayError, type ErrorCondition } from "../../src/xmpp/errors.js";

/** RFC 5321 §4.5.3.1.1: a local-part is at most 64 octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets, so 254 for the address. */
export const MAX_ADDRESS_OCTETS = 254;
/** RFC 1035 §2.3.4: a DNS label is at most 63 octets. */
export const MAX_LABEL_OCTETS = 63;
/** Longest text accepted in the "add contact" prompt (a display name plus an address). */
export const MAX_PROMPT_CHARS = 512;

export const EXAMPLE_ADDRESS = "friend@example.com";

/** RFC 5322 §3.2.3 atext: the characters of a dot-atom besides the dots. */
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
/** RFC 5322 §3.4.1 local-part as a dot-atom (quoted local-parts are refused: nobody types them). */
const DOT_ATOM = new RegExp(`^${ATEXT}+(\\.${ATEXT}+)*$`);
/** RFC 5321 §4.1.2 Domain: letters, digits and hyphens, no hyphen at either end of a label. */
const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const octets = (s: string) => Buffer.byteLength(s, "utf8");

function refuse(condition: ErrorCondition, text: string): never {
  throw new GatewayError(condition, text);
}

/**
 * A local-part that can go on the envelope and in a header as it is; throws `condition` with the reason.
 * `what` names it in the message ("The part before @", "An alias").
 */
export function checkLocalPart(local: string, condition: ErrorCondition, what: string): string {
  if (local === "") refuse(condition, `${what} is empty.`);
  if (octets(local) > MAX_LOCAL_PART_OCTETS)
    refuse(condition, `${what} is longer than ${MAX_LOCAL_PART_OCTETS} characters.`);
  if (!DOT_ATOM.test(local))
    refuse(
      condition,
      `${what} "${local}" may only hold letters, digits, dots (not first, last or doubled) and ` +
        "the signs ! # $ % & ' * + / = ? ^ _ ` { | } ~ -.",
    );
  return local;
}

/**
 * Checks an address and returns it normalised: the domain in lowercase, the local-part as written
 * (RFC 5321 §2.4: only the receiving host may interpret its case).
 */
export function checkAddress(address: string, condition: ErrorCondition): string {
  if (CONTROL.test(address))
    refuse(condition, "An email address cannot contain line breaks or control characters.");
  if (/\s/.test(address)) refuse(condition, "An email address cannot contain spaces.");
  // eslint-disable-next-line no-control-regex
  if (/[^\u0000-\u007f]/.test(address))
    refuse(condition, "Only plain ASCII email addresses are supported (no accented letters or IDN).");
  const at = address.lastIndexOf("@");
  if (at < 0) refuse(condition, `"${address}" is not an email address; write it like ${EXAMPLE_ADDRESS}.`);
  if (octets(address) > MAX_ADDRESS_OCTETS)
    refuse(condition, `An email address is at most ${MAX_ADDRESS_OCTETS} characters.`);
  const local = checkLocalPart(address.slice(0, at), condition, "The part before @");
  const domain = address.slice(at + 1).toLowerCase();
  const labels = domain.split(".");
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l) && l.length <= MAX_LABEL_OCTETS))
    refuse(condition, `"${domain}" is not a mail domain; write the address like ${EXAMPLE_ADDRESS}.`);
  return `${local}@${domain}`;
}

/** JID localpart → address: XEP-0106 unescaping, or the last `%` standing for `@`. */
function decode(localpart: string): string {
  let address = unescapeLocal(localpart);
  if (!address.includes("@")) {
    const percent = address.lastIndexOf("%");
    if (percent >= 0) address = `${address.slice(0, percent)}@${address.slice(percent + 1)}`;
  }
  return checkAddress(address, "jid-malformed");
}

/** RFC 6068 mailto: URI → the one address it names (headers such as ?subject= are ignored). */
function fromMailto(uri: string): string {
  const to = uri.slice("mailto:".length).split("?")[0] ?? "";
  let address: string;
  try {
    address = decodeURIComponent(to);
  } catch (err) {
    throw new GatewayError("item-not-found", "That mailto: link is not properly encoded.", { cause: err });
  }
  if (address.includes(",")) refuse("item-not-found", "Give one email address at a time.");
  return address;
}

/** What a user typed: `a@b`, `Name <a@b>`, `<a@b>` or `mailto:a@b`. */
function fromPrompt(prompt: string): string {
  if (prompt.length > MAX_PROMPT_CHARS)
    refuse(
      "item-not-found",
      `That is too long for an email address (at most ${MAX_PROMPT_CHARS} characters).`,
    );
  let text = prompt.trim();
  if (text === "") refuse("item-not-found", `Type an email address, e.g. ${EXAMPLE_ADDRESS}.`);
  // RFC 5322 §3.4 name-addr: the address is between the last angle brackets.
  const angle = /<([^<>]*)>$/.exec(text);
  if (angle) text = (angle[1] ?? "").trim();
  if (/^mailto:/i.test(text)) text = fromMailto(text);
  return checkAddress(text, "item-not-found");
}

export const emailCodec: IdCodec = {
  decode,
  encode: (address) => escapeLocal(checkAddress(address, "jid-malformed")),
  fromPrompt,
};
