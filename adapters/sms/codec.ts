/**
 * SMS contacts are phone numbers in E.164 form on the adapter's domain: `+12025550123@sms.example.org`.
 *
 * - `decode` takes a JID localpart and accepts only strict, canonical E.164 (ITU-T E.164 §6: at most 15
 *   digits, country code first). `+` and digits need no XEP-0106 escaping, but the localpart is unescaped
 *   first so an escaped form of the same text is read the same way.
 * - `fromPrompt` takes what a person types into a client's "add contact via gateway" box (XEP-0100 §6.3):
 *   national formats with spaces, dashes, dots or parentheses, a leading `00` international prefix, and
 *   RFC 3966 `tel:` URIs, using the configured default country for national numbers.
 *
 * Validation uses libphonenumber-js with its default ("min") metadata: the country code, the number's length
 * and its general digit pattern are checked, not the exact allocation of number ranges, which changes more
 * often than this gateway is upgraded. Twilio still has the last word (error 21211).
 */
import { LRUCache } from "lru-cache";
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { unescapeLocal } from "@xmpp/jid";
import type { IdCodec } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";

/**
 * A valid, fictional number used in every help text. (NANP reserves 555-0100…555-0199 for fiction; the
 * often-quoted +15551234567 is not a valid number at all, since 555 is not an area code.)
 */
export const EXAMPLE_E164 = "+12025550123";

/**
 * Fewest digits after `+` accepted as a contact. E.164 allows shorter numbers (Niue landlines have 7
 * digits with the country code), but no number that can receive SMS is that short.
 */
export const MIN_E164_DIGITS = 8;
/** ITU-T E.164 §6.1: an international number has at most 15 digits. */
export const MAX_E164_DIGITS = 15;
/** Longest prompt read at all: a phone number written with separators and a `tel:` prefix fits easily. */
export const MAX_PROMPT_CHARS = 100;
/** Short codes (dedicated 5–6 digit numbers for services) are a separate Twilio product. */
export const SHORT_CODE_DIGITS = { min: 5, max: 6 } as const;

const E164 = new RegExp(`^\\+[1-9]\\d{${MIN_E164_DIGITS - 1},${MAX_E164_DIGITS - 1}}$`);
const SHORT_CODE = new RegExp(`^\\d{${SHORT_CODE_DIGITS.min},${SHORT_CODE_DIGITS.max}}$`);
/** Visual separators people type or paste: RFC 3966 §5.1.1 `-` `.` `(` `)`, plus spaces and `/`. */
const SEPARATORS = /[\s\-.()/]/gu;
/** Hyphen look-alikes (U+2010…U+2015, U+2212 minus) that word processors and phone apps produce. */
const DASHES = /[\u2010-\u2015\u2212]/gu;

const EXPECTED = `an international number starting with + and the country code, e.g. ${EXAMPLE_E164}`;

function shortCodeError(condition: "item-not-found" | "jid-malformed"): GatewayError {
  return new GatewayError(
    condition,
    `Short codes (${SHORT_CODE_DIGITS.min}–${SHORT_CODE_DIGITS.max} digit service numbers) are not supported yet; ` +
      `write ${EXPECTED}.`,
  );
}

function notANumber(shown: string): GatewayError {
  // XEP-0100 §4.8: an address the legacy network cannot reach is item-not-found.
  return new GatewayError("item-not-found", `${shown} is not a valid phone number; write ${EXPECTED}.`);
}

/** Quote user input in an error text without letting a long or odd string take over the message. */
function quote(text: string): string {
  const clipped = [...text].slice(0, 32).join("");
  return JSON.stringify(clipped.length < text.length ? `${clipped}…` : clipped);
}

/**
 * Numbers that passed checkE164 lately, with their country ("" for none: +800, +882…). Parsing with
 * libphonenumber is the largest cost of an inbound SMS after the HTTP and Redis work, and the same numbers come
 * back in every conversation; an SMS out needs the country of the number its JID was checked for.
 */
const CHECKED = new LRUCache<string, CountryCode | "">({ max: 10_000 });

/** Strict E.164 check shared by decode and encode: the form first (jid-malformed), then validity. */
function checkE164(id: string): string {
  if (CHECKED.has(id)) return id;
  if (!E164.test(id)) {
    if (SHORT_CODE.test(id.split(";")[0] ?? "")) throw shortCodeError("jid-malformed");
    throw new GatewayError(
      "jid-malformed",
      `An SMS contact address is a phone number in E.164 form: + then ${MIN_E164_DIGITS}–${MAX_E164_DIGITS} digits ` +
        `with no spaces, e.g. ${EXAMPLE_E164}; ${quote(id)} is not.`,
    );
  }
  const parsed = parsePhoneNumberFromString(id);
  if (parsed === undefined || !parsed.isValid()) throw notANumber(id);
  if (parsed.number !== id)
    // One contact, one JID: a non-canonical spelling (e.g. a UK trunk 0 after +44) would split the chat.
    throw new GatewayError(
      "jid-malformed",
      `${id} is not written in canonical E.164 form; use ${parsed.number} instead.`,
    );
  CHECKED.set(id, parsed.country ?? "");
  return id;
}

/** RFC 3966 §3: `tel:` number then `;name=value` parameters. Returns the number with context applied. */
function fromTelUri(uri: string): string {
  const [number = "", ...params] = uri.split(";");
  let context: string | undefined;
  for (const param of params) {
    const [name = "", value = ""] = param.split("=");
    const key = name.trim().toLowerCase();
    if (key === "ext")
      throw new GatewayError("item-not-found", "An extension cannot receive SMS; give a mobile number.");
    if (key === "phone-context") context = value.trim();
    // Other parameters (isub, npdi, rn, cic…) do not change where the SMS goes.
  }
  if (context === undefined || number.trim().startsWith("+")) return number;
  // RFC 3966 §5.1.5: a local number's context is either a global number prefix or a domain name.
  if (!context.startsWith("+"))
    throw new GatewayError("item-not-found", `This tel: URI has a local number; write ${EXPECTED}.`);
  return context + number;
}

/** Turn typed text into digits with an optional leading `+`; throws for anything that is not a number. */
function compact(prompt: string): string {
  let text = prompt.trim();
  if ([...text].length > MAX_PROMPT_CHARS)
    throw new GatewayError("item-not-found", `That is too long for a phone number; write ${EXPECTED}.`);
  if (text === "") throw new GatewayError("item-not-found", `Type a phone number: ${EXPECTED}.`);
  if (/^tel:/iu.test(text)) text = fromTelUri(text.slice("tel:".length));
  text = text.replace(DASHES, "-");
  if (/(?:ext\.?|x|#)\s*\d+$/iu.test(text))
    throw new GatewayError("item-not-found", "An extension cannot receive SMS; give a mobile number.");
  const digits = text.replace(SEPARATORS, "");
  if (!/^\+?\d+$/u.test(digits)) throw notANumber(quote(prompt.trim()));
  // ITU-T E.164 / E.123: `00` is the international prefix in most of the world; read it as `+`.
  return digits.startsWith("00") ? `+${digits.slice(2)}` : digits;
}

export interface SmsCodecOptions {
  /** ISO 3166-1 alpha-2 country whose national format is accepted in prompts (e.g. "US", "FR"). */
  defaultCountry?: CountryCode;
}

export function createSmsCodec(options: SmsCodecOptions = {}): IdCodec {
  const { defaultCountry } = options;

  function fromPrompt(prompt: string): string {
    const digits = compact(prompt);
    const international = digits.startsWith("+");
    if (!international && defaultCountry === undefined) {
      if (SHORT_CODE.test(digits)) throw shortCodeError("item-not-found");
      throw new GatewayError("item-not-found", `${digits} has no country code; write ${EXPECTED}.`);
    }
    const parsed = international
      ? parsePhoneNumberFromString(digits)
      : parsePhoneNumberFromString(digits, defaultCountry);
    if (parsed === undefined || !parsed.isValid()) {
      // A few countries have 5-digit numbers, so a short code is only suspected once the number fails.
      if (!international && SHORT_CODE.test(digits)) throw shortCodeError("item-not-found");
      const hint = international ? "" : ` (read as a number in ${defaultCountry})`;
      throw new GatewayError(
        "item-not-found",
        `${digits}${hint} is not a valid phone number; write ${EXPECTED}.`,
      );
    }
    const e164 = parsed.number;
    if (!E164.test(e164)) throw notANumber(e164); // valid but too short to receive SMS (see MIN_E164_DIGITS)
    return e164;
  }

  return {
    decode: (localpart) => checkE164(unescapeLocal(localpart)),
    // E.164 has no character XEP-0106 escapes, so the localpart is the number itself.
    encode: (e164) => checkE164(e164),
    fromPrompt,
  };
}

/**
 * The ISO 3166-1 country of a valid E.164 number, for the destination allow-list; undefined for numbers
 * that belong to no country (+800 freephone, +882 international networks) or are not valid.
 * Shared country codes are resolved by number range: +1 202… is US, +1 416… is CA, +44 7911… is GG.
 */
export function countryOf(e164: string): CountryCode | undefined {
  const checked = CHECKED.get(e164);
  if (checked !== undefined) return checked || undefined;
  if (!E164.test(e164)) return undefined;
  const parsed = parsePhoneNumberFromString(e164);
  return parsed?.isValid() === true ? parsed.country : undefined;
}
