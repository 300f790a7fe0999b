/**
 * One XMPP message → the PRIVMSG texts to send, and IRC bytes → text.
 *
 * Empty and blank lines are dropped rather than sent as a single space: IRC refuses an empty PRIVMSG
 * (ERR_NOTEXTTOSEND, RFC 2812 §3.3.1), and every line sent costs flood budget for nothing visible.
 * IRC formatting does not carry over from one line to the next: a span cut in two loses its style on the
 * second line, which only shows the XEP-0393 markers typed by the user anyway.
 */
import { TextDecoder } from "node:util";
import { GatewayError } from "../../src/xmpp/errors.js";
import { parseCtcp } from "./format.js";

/** RFC 1459 §2.3: a message is at most 512 bytes including the prefix and the trailing CR LF. */
export const IRC_LINE_BYTES = 512;

/**
 * Most lines one XMPP message may become. Servers disconnect a client for "Excess Flood" after a burst of
 * about 10 lines, so the adapter paces lines (about one a second): 20 lines already hold a channel for
 * 20 seconds. Longer texts belong on a paste service.
 */
export const MAX_LINES_PER_MESSAGE = 20;

/**
 * A long line is cut at its last space when that space is within the last fifth of the part (so parts
 * stay at least 80% full); otherwise it is cut at the last whole character that fits.
 */
export const SPACE_CUT_FRACTION = 0.2;

/** RFC 3629 §3: a code point takes at most 4 bytes in UTF-8; a part must hold at least one. */
export const MAX_UTF8_CHAR_BYTES = 4;

/** Bytes of "\x01ACTION " and the final "\x01" around each line of a /me (CTCP). */
const ACTION_OVERHEAD = 9;

export interface SplitOptions {
  /** The PRIVMSG target: a channel or a nick. */
  target: string;
  /** Bytes of `nick!user@host`, the prefix the server puts in front when it relays the line. */
  prefixBytes: number;
  /** Override of IRC_LINE_BYTES (e.g. a server that advertises LINELEN). */
  maxLineBytes?: number;
  /** Override of MAX_LINES_PER_MESSAGE. */
  maxLines?: number;
}

const utf8Bytes = (s: string): number => Buffer.byteLength(s, "utf8");

/** Bytes left for the text in `:<prefix> PRIVMSG <target> :<text>\r\n`. */
export function textBudget(opts: SplitOptions): number {
  const overhead = 1 + opts.prefixBytes + " PRIVMSG ".length + utf8Bytes(opts.target) + " :".length + 2;
  return (opts.maxLineBytes ?? IRC_LINE_BYTES) - overhead;
}

// UAX #14 mandatory breaks: CR LF, LF, CR, VT, FF, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
const LINE_BREAK = /\r\n|[\n\r\v\f\u0085\u2028\u2029]/;
// C0 controls and DEL, except the IRC formatting codes (bold, colour, hex colour, reset, monospace,
// reverse, italic, strikethrough, underline) and the CTCP marker \x01.
// eslint-disable-next-line no-control-regex
const UNWANTED_CONTROL = /[\x00\x05-\x08\x0a-\x0e\x10\x12-\x15\x17-\x1c\x7f]/g;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function clean(line: string, action: boolean): string {
  const text = line.replace(/\t/g, " ").replace(UNWANTED_CONTROL, "").replace(LONE_SURROGATE, "\uFFFD");
  // Inside an ACTION a \x01 would end the CTCP early.
  // eslint-disable-next-line no-control-regex
  return action ? text.replace(/\x01/g, "") : text;
}

/** Cuts one line into parts of at most `budget` UTF-8 bytes, at code point boundaries. */
function cut(line: string, budget: number): string[] {
  const cps = [...line];
  const parts: string[] = [];
  let start = 0;
  while (start < cps.length) {
    let bytes = 0;
    let end = start;
    let space = -1;
    let spaceBytes = 0;
    for (; end < cps.length; end++) {
      const b = utf8Bytes(cps[end] ?? "");
      if (bytes + b > budget) break;
      if (cps[end] === " ") [space, spaceBytes] = [end, bytes];
      bytes += b;
    }
    if (end === cps.length) {
      parts.push(cps.slice(start).join(""));
      break;
    }
    if (cps[end] === " ") {
      parts.push(cps.slice(start, end).join(""));
      start = end + 1;
    } else if (space > start && spaceBytes >= budget * (1 - SPACE_CUT_FRACTION)) {
      parts.push(cps.slice(start, space).join(""));
      start = space + 1;
    } else {
      parts.push(cps.slice(start, end).join(""));
      start = end;
    }
  }
  return parts;
}

/**
 * The PRIVMSG texts for one XMPP body (already through toIrc): split at line breaks, blank lines dropped,
 * long lines cut to fit IRC_LINE_BYTES with the relayed prefix, control characters removed (NUL, CR, LF
 * never remain). A CTCP ACTION body makes every line an ACTION; in other text a line that would start
 * with \x01 loses it, so nobody can smuggle a CTCP query. Throws GatewayError("not-acceptable") when the
 * body holds nothing to send or would need more than MAX_LINES_PER_MESSAGE lines.
 */
export function toIrcLines(body: string, opts: SplitOptions): string[] {
  const ctcp = parseCtcp(body);
  const action = ctcp?.command === "ACTION";
  const text = action ? ctcp.params : body;
  const budget = textBudget(opts) - (action ? ACTION_OVERHEAD : 0);
  if (budget < MAX_UTF8_CHAR_BYTES)
    throw new GatewayError(
      "not-acceptable",
      `The IRC name ${opts.target} leaves no room for text in a line.`,
    );
  const lines: string[] = [];
  for (const raw of text.split(LINE_BREAK)) {
    const line = clean(raw, action);
    if (line.trim() === "") continue;
    for (const part of cut(line, budget)) {
      if (action) lines.push(`\x01ACTION ${part}\x01`);
      else {
        // eslint-disable-next-line no-control-regex
        const safe = /^\x01ACTION [^\x01]*\x01$/.test(part) ? part : part.replace(/^\x01+/, "");
        if (safe.trim() !== "") lines.push(safe);
      }
    }
  }
  if (lines.length === 0)
    throw new GatewayError("not-acceptable", "This message has no text IRC can carry (only blank lines).");
  const max = opts.maxLines ?? MAX_LINES_PER_MESSAGE;
  if (lines.length > max)
    throw new GatewayError(
      "not-acceptable",
      `This message would be ${lines.length} IRC lines; the limit is ${max} per message, to stay within ` +
        "the network's flood limits. Shorten it or share long text through a paste service.",
    );
  return lines;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** True when TextDecoder (WHATWG Encoding) knows the label: windows-1252, iso-8859-15, koi8-r, shift_jis… */
export function isSupportedCharset(name: string): boolean {
  try {
    new TextDecoder(name);
    return true;
  } catch {
    return false;
  }
}

/** The fallback decoder, checked: call at config time so a bad name stops the start, not a message. */
export function charsetDecoder(name: string): TextDecoder {
  if (!isSupportedCharset(name))
    throw new GatewayError(
      "not-acceptable",
      `Unknown character set "${name}": use a WHATWG encoding label such as windows-1252, iso-8859-15, ` +
        "iso-8859-2, koi8-r or shift_jis.",
    );
  return new TextDecoder(name);
}

/**
 * WHATWG index-windows-1252 for bytes 0x80-0x9F (0x81, 0x8D, 0x8F, 0x90 and 0x9D map to themselves).
 * Node 20.18.3+ and 22.13+ decode windows-1252 (and so "latin1") as ISO-8859-1, leaving these as C1
 * controls (nodejs/node#60888); mapping them afterwards is right on both fixed and affected versions.
 */
const CP1252_C1 =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

/**
 * IRC bytes → text: valid UTF-8 as is (biboumi's rule), otherwise decoded with the fallback charset
 * (WHATWG maps "latin1" and "iso-8859-1" to windows-1252). Throws GatewayError on an unknown charset.
 */
export function decodeIrcText(bytes: Uint8Array, fallbackCharset: string): string {
  const fallback = charsetDecoder(fallbackCharset);
  try {
    return UTF8.decode(bytes);
  } catch {
    const text = fallback.decode(bytes);
    if (fallback.encoding !== "windows-1252") return text;
    return text.replace(/[\u0080-\u009f]/g, (c) => CP1252_C1.charAt(c.charCodeAt(0) - 0x80));
  }
}

/**
 * A buffer of whole IRC lines → text, each line decoded on its own (decodeIrcText), so one line in a
 * legacy charset does not turn the valid UTF-8 lines read with it into mojibake.
 */
export function decodeIrcLines(bytes: Uint8Array, fallbackCharset: string): string {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    // RFC 1459 §2.3: lines end with CR LF; LF alone is accepted too (ircdocs "Messages").
    if (bytes[i] !== 0x0a) continue;
    parts.push(decodeIrcText(bytes.subarray(start, i + 1), fallbackCharset));
    start = i + 1;
  }
  if (start < bytes.length) parts.push(decodeIrcText(bytes.subarray(start), fallbackCharset));
  return parts.join("");
}
