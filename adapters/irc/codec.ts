/**
 * IRC addresses, biboumi's scheme (doc/user.rst):
 *   channel `#chan%irc.example.net@irc.example.org` (an XEP-0045 room), nick `nick%irc.example.net@…`
 *   (1:1 chat), server `irc.example.net@…`; with a fixed server, `#chan@…` and `nick@…` (the server is then
 *   the gateway's own bare domain and has no localpart).
 *
 * The foreign id (what IdCodec.decode returns) is the unescaped localpart with the server always present:
 * `#chan%irc.example.net`, `nick%irc.example.net`, `irc.example.net`. The split is at the last `%`: a host
 * name cannot hold one, a channel name can (`#100%%irc.example.net` is the channel `#100%`).
 *
 * Case: IRC compares channel and nick names case-insensitively and DNS compares host names so too, while
 * XMPP servers lowercase localparts (RFC 8265 §3.3.1 UsernameCaseMapped: toLowerCase). So every parsed
 * name is lowercased (String.prototype.toLowerCase, like PRECIS): one JID per IRC entity whatever case
 * the user typed. The real-case nick is carried by the adapter elsewhere (MUC resource, XEP-0172 nick).
 */
import { escapeLocal, unescapeLocal } from "@xmpp/jid";
import type { IdCodec } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";

/**
 * RFC 2812 §1.3: channel names are "of length up to fifty (50) characters". Servers advertise their own
 * CHANNELLEN (often 32 to 64); this is the RFC figure, counted in UTF-8 bytes as servers count on the wire.
 */
export const CHANNEL_MAX_BYTES = 50;
/**
 * RFC 2812 §2.3.1 says 9 characters, but servers advertise NICKLEN in RPL_ISUPPORT (Libera 16, OFTC and
 * InspIRCd 30). 30 admits every common network; a server with a shorter NICKLEN answers 432 itself.
 */
export const NICK_MAX_BYTES = 30;
/** RFC 1035 §2.3.4: a label is at most 63 octets; a name at most 253 characters in text form. */
export const HOST_LABEL_MAX_CHARS = 63;
export const HOST_MAX_CHARS = 253;
/** RFC 2812 §1.3 channel prefixes: # (network), & (server-local), + (modeless), ! (safe). */
export const CHANNEL_PREFIXES = "#&+!";
/** Ports an irc:// or ircs:// prompt may name: the ones the gateway tries itself (RFC 7194: 6697 is TLS). */
export const STANDARD_PORTS: readonly string[] = ["6667", "6697"];

export type IrcTarget =
  | { kind: "channel"; channel: string; server: string }
  | { kind: "nick"; nick: string; server: string }
  | { kind: "server"; server: string };

export interface IrcCodecOptions {
  /** biboumi's fixed_irc_server: every address is on this server and carries no `%server`. */
  fixedServer?: string;
}

const malformed = (text: string): GatewayError => new GatewayError("jid-malformed", text);
const EXAMPLES = "e.g. #chat%irc.libera.chat, alice%irc.libera.chat or irc.libera.chat";

/** Control characters shown as \uXXXX, so an error text stays readable and XML-safe. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function isChannelName(name: string): boolean {
  return name.length > 0 && CHANNEL_PREFIXES.includes(name.charAt(0));
}

/**
 * RFC 2812 §1.3 and modern servers (ircdocs "Channels"): a prefix, then anything but space, comma and BEL;
 * NUL, CR and LF cannot cross the protocol. Other C0 controls and DEL are refused too: a JID cannot carry
 * them (RFC 8264 §9.2 disallows controls). Returns the lowercased name.
 */
export function checkChannel(name: string): string {
  const channel = name.toLowerCase();
  if (!isChannelName(channel))
    throw malformed(`"${printable(name)}" is not an IRC channel: it must start with # & + or !, e.g. #chat.`);
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u001f\u007f ,]/.exec(channel)?.[0];
  if (bad !== undefined) {
    const what =
      bad === " " ? "a space" : bad === "," ? "a comma" : `the control character ${printable(bad)}`;
    throw malformed(
      `The IRC channel name "${printable(name)}" contains ${what}; channel names cannot hold spaces, ` +
        "commas or control characters, e.g. #my-channel.",
    );
  }
  const bytes = Buffer.byteLength(channel, "utf8");
  if (bytes > CHANNEL_MAX_BYTES)
    throw malformed(
      `The IRC channel name "${name}" is ${bytes} bytes long; IRC allows at most ${CHANNEL_MAX_BYTES} (RFC 2812 §1.3).`,
    );
  return channel;
}

// RFC 2812 §2.3.1: nickname = ( letter / special ) *( letter / digit / special / "-" ),
// special = "[" / "]" / "\" / "`" / "_" / "^" / "{" / "|" / "}".
const NICK = /^[A-Za-z[\]\\`_^{|}][A-Za-z0-9[\]\\`_^{|}-]*$/;

/** RFC 2812 §2.3.1 nick, at most NICK_MAX_BYTES; returns it lowercased. */
export function checkNick(name: string): string {
  if (!NICK.test(name))
    throw malformed(
      `"${printable(name)}" is not a valid IRC nick: use letters, digits and [ ] \\ \` _ ^ { | } -, ` +
        "not starting with a digit or -, e.g. alice or bob_42.",
    );
  if (name.length > NICK_MAX_BYTES)
    throw malformed(
      `The IRC nick "${name}" is ${name.length} characters long; at most ${NICK_MAX_BYTES} are accepted.`,
    );
  return name.toLowerCase();
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const OCTET = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);

/**
 * A DNS host name of LDH labels (RFC 1123 §2.1; RFC 3696 §2: the last label is not all digits) or an IPv4
 * literal, lowercased (RFC 4343). No port: a JID has no room for one, and Spectrum 2's XEP-0106 `\3a`
 * escaping of a port is not supported; the port is a per-server setting.
 */
export function checkServer(name: string): string {
  const host = name.toLowerCase();
  if (host === "") throw malformed(`The IRC server name is missing, ${EXAMPLES}.`);
  const colon = host.indexOf(":");
  if (colon >= 0 && /^\d+$/.test(host.slice(colon + 1)))
    throw malformed(
      `"${printable(name)}" includes a port; an address names the server only (${host.slice(0, colon)}), ` +
        "and the port is a per-server setting of the gateway.",
    );
  if (IPV4.test(host)) return host;
  const labels = host.split(".");
  if (
    host.length > HOST_MAX_CHARS ||
    labels.some((l) => l.length > HOST_LABEL_MAX_CHARS || !LABEL.test(l)) ||
    /^\d+$/.test(labels[labels.length - 1] ?? "")
  )
    throw malformed(
      `"${printable(name)}" is not an IRC server name: use a host name of letters, digits, - and dots ` +
        "or an IPv4 address (IPv6 literals are not supported), e.g. irc.libera.chat.",
    );
  return host;
}

function named(name: string, server: string): IrcTarget {
  return isChannelName(name)
    ? { kind: "channel", channel: checkChannel(name), server }
    : { kind: "nick", nick: checkNick(name), server };
}

function fixedHost(opts: IrcCodecOptions): string | undefined {
  return opts.fixedServer === undefined ? undefined : checkServer(opts.fixedServer);
}

/** Splits `name%server` (or a bare `server`) in the unescaped form shared by localparts and foreign ids. */
function parseUnescaped(text: string, fixed: string | undefined): IrcTarget {
  // biboumi fixed_irc_server: the whole localpart is the name; `%` is then just a character of a channel,
  // except that `#chan%<the fixed server>` is refused rather than read as a different channel.
  if (fixed !== undefined) {
    if (text === "") return { kind: "server", server: fixed };
    if (text.toLowerCase().endsWith(`%${fixed}`))
      throw malformed(`This gateway reaches only ${fixed}, so addresses carry no %server: drop "%${fixed}".`);
    return named(text, fixed);
  }
  const at = text.lastIndexOf("%");
  if (at < 0) {
    if (isChannelName(text))
      throw malformed(
        `"${printable(text)}" names no IRC server: add it after a %, e.g. ${text}%irc.libera.chat.`,
      );
    return { kind: "server", server: checkServer(text) };
  }
  const name = text.slice(0, at);
  const server = checkServer(text.slice(at + 1));
  if (name === "") throw malformed(`Nothing comes before the % in "${printable(text)}", ${EXAMPLES}.`);
  return named(name, server);
}

/** JID localpart (XEP-0106 escaped) → IRC target; throws GatewayError("jid-malformed"). */
export function parseIrcLocalpart(localpart: string, opts: IrcCodecOptions): IrcTarget {
  return parseUnescaped(unescapeLocal(localpart), fixedHost(opts));
}

/**
 * XEP-0106 §4.2: a backslash is escaped (`\5c`) only when it begins an escape sequence; @xmpp/jid escapes
 * every one, so nicks like `a\b` would get two JIDs. Undo the needless ones.
 */
function escapeXep0106(text: string): string {
  return escapeLocal(text).replace(/\\5c(?!20|22|26|27|2f|3a|3c|3e|40|5c)/g, "\\");
}

/** IRC target → escaped localpart; in fixed-server mode the server itself is "" (the bare gateway domain). */
export function formatIrcLocalpart(target: IrcTarget, opts: IrcCodecOptions): string {
  const fixed = fixedHost(opts);
  if (fixed !== undefined && target.server !== fixed)
    throw new GatewayError("item-not-found", `This gateway only reaches the IRC server ${fixed}.`);
  const name = target.kind === "channel" ? target.channel : target.kind === "nick" ? target.nick : "";
  return escapeXep0106(fixed !== undefined ? name : formatIrcId(target));
}

/** IRC target → foreign id string: `#chan%server`, `nick%server` or `server`. */
export function formatIrcId(target: IrcTarget): string {
  if (target.kind === "server") return target.server;
  return `${target.kind === "channel" ? target.channel : target.nick}%${target.server}`;
}

/** Foreign id string → IRC target (the server is always present, also in fixed-server mode). */
export function parseIrcId(id: string): IrcTarget {
  return parseUnescaped(id, undefined);
}

/**
 * What a user typed in a jabber:iq:gateway prompt (XEP-0100 §6):
 *   `#chan%irc.example.net`, `#chan@irc.example.net`, `nick@irc.example.net`, `irc.example.net`,
 *   `ircs://irc.example.net/#chan`, `irc://irc.example.net:6697/chan` (no prefix means #, as in the irc://
 *   URL drafts; `,isnick` marks a nick), a pasted gateway JID `#chan%irc.example.net@irc.example.org`, and
 *   with a fixed server a bare `#chan` or `nick`.
 * Ports: only the standard 6667 and 6697 are accepted (and dropped: the gateway picks the port, TLS first);
 * any other port is refused with a text, rather than silently connecting somewhere else.
 */
export function parseIrcPrompt(prompt: string, opts: IrcCodecOptions): IrcTarget {
  const fixed = fixedHost(opts);
  const text = prompt.trim();
  if (text === "") throw malformed(`Type an IRC channel, nick or server, ${EXAMPLES}.`);
  const target = /^ircs?:\/\//i.test(text) ? parseUrl(text) : parseTyped(text, fixed);
  if (fixed !== undefined && target.server !== fixed)
    throw new GatewayError(
      "item-not-found",
      `This gateway only reaches the IRC server ${fixed}, not ${target.server}.`,
    );
  if (fixed !== undefined && target.kind === "server")
    throw malformed(`The IRC server ${fixed} is this gateway's own address; type a channel or a nick.`);
  return target;
}

function parseTyped(text: string, fixed: string | undefined): IrcTarget {
  const pct = text.lastIndexOf("%");
  if (pct >= 0) {
    // A pasted gateway JID (XEP-0106 escaped): a host name cannot hold `@`, so what follows one is the
    // gateway's own domain.
    const rest = text.slice(pct + 1);
    const at = rest.indexOf("@");
    if (at < 0) return parseUnescaped(text, undefined);
    return parseUnescaped(unescapeLocal(text.slice(0, pct + 1) + rest.slice(0, at)), undefined);
  }
  const at = text.lastIndexOf("@");
  if (at >= 0) {
    if (at === 0) throw malformed(`Nothing comes before the @ in "${printable(text)}", ${EXAMPLES}.`);
    return named(text.slice(0, at), checkServer(text.slice(at + 1)));
  }
  // A dot never appears in a nick and rarely in a channel: a dotted word is a server name.
  if (!isChannelName(text) && (text.includes(".") || text.toLowerCase() === "localhost"))
    return { kind: "server", server: checkServer(text) };
  if (fixed !== undefined) return named(text, fixed);
  throw malformed(`Which IRC server is ${printable(text)} on? Type e.g. ${printable(text)}@irc.libera.chat.`);
}

/** irc:// and ircs:// URLs (draft-butcher-irc-url): `ircs://host[:port]/[target][,flags]`. */
function parseUrl(url: string): IrcTarget {
  const body = url.slice(url.indexOf("://") + 3);
  const slash = body.indexOf("/");
  const authority = slash < 0 ? body : body.slice(0, slash);
  const path = slash < 0 ? "" : body.slice(slash + 1);
  const colon = authority.lastIndexOf(":");
  let host = authority;
  if (colon >= 0 && /^\d*$/.test(authority.slice(colon + 1))) {
    const port = authority.slice(colon + 1);
    if (port !== "" && !STANDARD_PORTS.includes(port))
      throw malformed(
        `Port ${port} cannot be part of an IRC address; the gateway connects on ${STANDARD_PORTS.join(" or ")} ` +
          `(a different port is a per-server setting). Type e.g. ircs://${authority.slice(0, colon)}/#chat.`,
      );
    host = authority.slice(0, colon);
  }
  const server = checkServer(host);
  const [rawName = "", ...flags] = path.split(",");
  let name: string;
  try {
    name = decodeURIComponent(rawName);
  } catch (err) {
    throw new GatewayError("jid-malformed", `"${url}" has a broken %-escape in its channel or nick.`, {
      cause: err,
    });
  }
  if (name === "") return { kind: "server", server };
  if (flags.includes("isnick")) return { kind: "nick", nick: checkNick(name), server };
  return { kind: "channel", channel: checkChannel(isChannelName(name) ? name : `#${name}`), server };
}

/** The IdCodec for the IRC adapter; `fixedServer` is checked here, at config time. */
export function createIrcCodec(opts: IrcCodecOptions): IdCodec {
  const fixedServer = fixedHost(opts);
  const options: IrcCodecOptions = fixedServer === undefined ? {} : { fixedServer };
  return {
    decode: (localpart) => formatIrcId(parseIrcLocalpart(localpart, options)),
    encode: (id) => {
      const local = formatIrcLocalpart(parseIrcId(id), options);
      if (local === "")
        throw malformed(`The IRC server ${id} is this gateway's own address; it has no contact address.`);
      return local;
    },
    fromPrompt: (prompt) => formatIrcId(parseIrcPrompt(prompt, options)),
  };
}
