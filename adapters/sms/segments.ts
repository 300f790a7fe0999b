/**
 * How many SMS segments a body costs, counted the way carriers and Twilio bill it.
 *
 * 3GPP TS 23.038 §6.2.1: the GSM 7-bit default alphabet, plus an extension table reached through an escape
 * septet (so each extension character costs 2 septets). 3GPP TS 23.040 §9.2.3.24.1: a concatenated message
 * carries a 6-octet user data header in each part, leaving 153 septets or 67 UCS-2 units of the 160 / 70.
 * One character outside GSM-7 switches the whole message to UCS-2 (UTF-16 code units; an astral character
 * such as an emoji is a surrogate pair, 2 units). Parts never split an escape pair or a surrogate pair, so
 * a character that does not fit at the end of a part moves to the next one.
 *
 * An empty body is 0 segments. Twilio refuses a message with neither body nor media (warning 14103); that is
 * for the sender to check, since an MMS may carry only media.
 */
import { GatewayError } from "../../src/xmpp/errors.js";

export type SmsEncoding = "GSM-7" | "UCS-2";

export interface SegmentInfo {
  encoding: SmsEncoding;
  /** GSM-7 septets or UCS-2 (UTF-16) code units in the whole body. */
  units: number;
  segments: number;
  /** Units one segment holds for this message: 160/70 when it fits in one, else 153/67. */
  perSegment: number;
}

/** 3GPP TS 23.040: 140 octets of user data = 160 septets or 70 UCS-2 characters in a single SMS. */
export const GSM7_SINGLE = 160;
export const UCS2_SINGLE = 70;
/** 3GPP TS 23.040 §9.2.3.24.1: the concatenation header (6 octets) leaves 153 septets / 67 UCS-2 units. */
export const GSM7_PER_PART = 153;
export const UCS2_PER_PART = 67;

/**
 * Default cap on segments per outbound message. Twilio caps a body at 1,600 characters (error 21617) and
 * recommends 320 or fewer; 10 segments is 1,530 GSM-7 characters or 670 UCS-2 units, and bounds the cost of
 * one message to 10 billed SMS.
 */
export const MAX_SEGMENTS_DEFAULT = 10;

/** Twilio error 21617: a Messages body is at most 1,600 characters (emoji count as more than one). */
export const TWILIO_MAX_BODY_CHARS = 1600;

/** Most look-alike characters named in one refusal, so the text stays readable. */
export const MAX_NAMED_CHARACTERS = 3;

/** 3GPP TS 23.038 §6.2.1 default alphabet, in table order (0x1B, the escape, is not a character). */
const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
/** 3GPP TS 23.038 §6.2.1.1 extension table: form feed ^ { } \ [ ~ ] | €, each after an escape septet. */
const GSM7_EXTENSION = new Set("\f^{}\\[~]|€");

/** Characters that force UCS-2 but have a GSM-7 stand-in that reads the same, with their Unicode names. */
const LOOK_ALIKES: ReadonlyMap<string, { name: string; gsm: string }> = new Map([
  ["\u2018", { name: "LEFT SINGLE QUOTATION MARK", gsm: "'" }],
  ["\u2019", { name: "RIGHT SINGLE QUOTATION MARK", gsm: "'" }],
  ["\u201a", { name: "SINGLE LOW-9 QUOTATION MARK", gsm: "'" }],
  ["\u201b", { name: "SINGLE HIGH-REVERSED-9 QUOTATION MARK", gsm: "'" }],
  ["\u2032", { name: "PRIME", gsm: "'" }],
  ["\u02bc", { name: "MODIFIER LETTER APOSTROPHE", gsm: "'" }],
  ["\u00b4", { name: "ACUTE ACCENT", gsm: "'" }],
  ["`", { name: "GRAVE ACCENT", gsm: "'" }],
  ["\u2039", { name: "SINGLE LEFT-POINTING ANGLE QUOTATION MARK", gsm: "'" }],
  ["\u203a", { name: "SINGLE RIGHT-POINTING ANGLE QUOTATION MARK", gsm: "'" }],
  ["\u201c", { name: "LEFT DOUBLE QUOTATION MARK", gsm: '"' }],
  ["\u201d", { name: "RIGHT DOUBLE QUOTATION MARK", gsm: '"' }],
  ["\u201e", { name: "DOUBLE LOW-9 QUOTATION MARK", gsm: '"' }],
  ["\u2033", { name: "DOUBLE PRIME", gsm: '"' }],
  ["\u00ab", { name: "LEFT-POINTING DOUBLE ANGLE QUOTATION MARK", gsm: '"' }],
  ["\u00bb", { name: "RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK", gsm: '"' }],
  ["\u2010", { name: "HYPHEN", gsm: "-" }],
  ["\u2011", { name: "NON-BREAKING HYPHEN", gsm: "-" }],
  ["\u2012", { name: "FIGURE DASH", gsm: "-" }],
  ["\u2013", { name: "EN DASH", gsm: "-" }],
  ["\u2014", { name: "EM DASH", gsm: "-" }],
  ["\u2015", { name: "HORIZONTAL BAR", gsm: "-" }],
  ["\u2212", { name: "MINUS SIGN", gsm: "-" }],
  ["\u2022", { name: "BULLET", gsm: "-" }],
  ["\u2026", { name: "HORIZONTAL ELLIPSIS", gsm: "..." }],
  ["\u00a0", { name: "NO-BREAK SPACE", gsm: " " }],
  ["\u2002", { name: "EN SPACE", gsm: " " }],
  ["\u2003", { name: "EM SPACE", gsm: " " }],
  ["\u2009", { name: "THIN SPACE", gsm: " " }],
  ["\u202f", { name: "NARROW NO-BREAK SPACE", gsm: " " }],
  ["\u200b", { name: "ZERO WIDTH SPACE", gsm: "" }],
  ["\ufeff", { name: "ZERO WIDTH NO-BREAK SPACE", gsm: "" }],
]);

/** Cost of one code point in septets, or undefined when GSM-7 cannot carry it. */
function septets(char: string): 1 | 2 | undefined {
  if (GSM7_BASIC.has(char)) return 1;
  if (GSM7_EXTENSION.has(char)) return 2;
  return undefined;
}

/** Parts needed for indivisible items of the given sizes (1 or 2 units) in parts of `perPart` units. */
function parts(sizes: readonly number[], perPart: number): number {
  let count = 1;
  let used = 0;
  for (const size of sizes) {
    if (used + size > perPart) {
      count += 1;
      used = 0;
    }
    used += size;
  }
  return count;
}

function info(encoding: SmsEncoding, sizes: readonly number[]): SegmentInfo {
  const [single, perPart] =
    encoding === "GSM-7" ? [GSM7_SINGLE, GSM7_PER_PART] : [UCS2_SINGLE, UCS2_PER_PART];
  const units = sizes.reduce((sum, size) => sum + size, 0);
  if (units === 0) return { encoding, units, segments: 0, perSegment: single };
  if (units <= single) return { encoding, units, segments: 1, perSegment: single };
  return { encoding, units, segments: parts(sizes, perPart), perSegment: perPart };
}

export function segmentInfo(body: string): SegmentInfo {
  const chars = [...body]; // code points: a surrogate pair stays one item
  const gsm = chars.map(septets);
  if (gsm.every((size) => size !== undefined)) return info("GSM-7", gsm);
  return info(
    "UCS-2",
    chars.map((char) => char.length), // UTF-16 units: 2 for an astral character
  );
}

function describeChar(char: string): string {
  const code = `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
  const alike = LOOK_ALIKES.get(char);
  // Invisible and space characters are described only; printing them would show nothing.
  const shown = /^[\s\u200b\ufeff]$/u.test(char) ? "" : `${char} `;
  if (alike === undefined) return `${shown}(${code})`;
  const instead =
    alike.gsm === "" ? "remove it" : `type ${alike.gsm === " " ? "a plain space" : alike.gsm} instead`;
  return `${shown}(${code} ${alike.name}: ${instead})`;
}

/** Which characters made the body UCS-2, and what a GSM-7 rewrite would cost when look-alikes alone did. */
function ucs2Hint(body: string): string {
  const culprits = [...new Set([...body].filter((char) => septets(char) === undefined))];
  const named = culprits.slice(0, MAX_NAMED_CHARACTERS);
  const more = culprits.length > named.length ? ` and ${culprits.length - named.length} more` : "";
  const list = named.map(describeChar).join(", ");
  const why = ` It is sent as UCS-2 (${UCS2_SINGLE} characters per segment instead of ${GSM7_SINGLE}) because of`;
  if (!culprits.every((char) => LOOK_ALIKES.has(char))) return `${why} ${list}${more}.`;
  const plain = [...body].map((char) => LOOK_ALIKES.get(char)?.gsm ?? char).join("");
  const { segments } = segmentInfo(plain);
  return `${why} ${list}${more}; with plain characters it would need ${segments} segment${segments === 1 ? "" : "s"}.`;
}

/**
 * The segment count of an outbound body, or a not-acceptable refusal (RFC 6120 §8.3.3.12) that says how many
 * segments it needs, the limit, and — when UCS-2 is to blame — which characters caused it.
 */
export function checkSegments(body: string, maxSegments: number): SegmentInfo {
  const result = segmentInfo(body);
  if (result.segments > maxSegments) {
    const hint = result.encoding === "UCS-2" ? ucs2Hint(body) : "";
    throw new GatewayError(
      "not-acceptable",
      `The message needs ${result.segments} SMS segments (${result.encoding}); the limit is ${maxSegments}.${hint} ` +
        "Shorten it or send it as several messages.",
    );
  }
  if (body.length > TWILIO_MAX_BODY_CHARS)
    throw new GatewayError(
      "not-acceptable",
      `The message is ${body.length} characters long; Twilio accepts at most ${TWILIO_MAX_BODY_CHARS}. ` +
        "Shorten it or send it as several messages.",
    );
  return result;
}
