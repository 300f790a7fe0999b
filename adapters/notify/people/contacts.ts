/**
 * How an alert reaches a person: one Redis hash per user (bare JID) at key("contact", jid), written only
 * here and read by the notify engine. Fields (all strings):
 *   v              store version (1)
 *   phone          verified E.164 number; phoneVerified "1" (a number is stored only once its code was entered)
 *   email          verified address; emailVerified "1"
 *   quietStart/quietEnd  "HH:MM" in tz; both or neither
 *   tz             IANA time zone (checked with Intl)
 *   channels       comma list of the channels the user accepts, from xmpp,sms,email
 * The validators are pure and throw GatewayError("not-acceptable") with a text for the user.
 */
import { parsePhoneNumberFromString } from "libphonenumber-js";
import type { RedisClient } from "../../../src/store/redis-client.js";
import type { KeyBuilder } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";

export const CONTACT_VERSION = "1";
export const CHANNELS = ["xmpp", "sms", "email"] as const;
export type Channel = (typeof CHANNELS)[number];
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address at most 254 characters. */
export const MAX_EMAIL_CHARS = 254;
/** Channels a user who never chose accepts. */
export const DEFAULT_CHANNELS: readonly Channel[] = CHANNELS;

export interface Contact {
  phone?: string;
  email?: string;
  quietStart?: string;
  quietEnd?: string;
  tz?: string;
  channels: Channel[];
}

/** A phone number typed by the user, in international form → E.164. */
export function normalisePhone(input: string): string {
  const text = input.trim();
  const parsed = text.startsWith("+") ? parsePhoneNumberFromString(text) : undefined;
  if (!parsed?.isValid())
    throw new GatewayError(
      "not-acceptable",
      `"${text}" is not a phone number in international form, like +12025550123.`,
    );
  return parsed.number;
}

// One @, a dotted domain, no spaces, no control characters, no angle brackets (a header stays one line).
const EMAIL =
  // eslint-disable-next-line no-control-regex
  /^[^\s@<>()\u0000-\u001f\u007f,;:"]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/i;

export function normaliseEmail(input: string): string {
  const text = input.trim();
  if (text.length > MAX_EMAIL_CHARS || !EMAIL.test(text))
    throw new GatewayError("not-acceptable", `"${text}" is not an email address like name@example.org.`);
  const at = text.lastIndexOf("@");
  return `${text.slice(0, at)}@${text.slice(at + 1).toLowerCase()}`;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

export function checkTime(input: string, label: string): string {
  const text = input.trim();
  const m = HHMM.exec(text.length === 4 ? `0${text}` : text);
  if (!m) throw new GatewayError("not-acceptable", `${label} "${text}" is not a time like 22:00.`);
  return `${m[1]}:${m[2]}`;
}

/** An IANA time zone name, as Intl knows it (canonical spelling). */
export function checkTimeZone(input: string): string {
  const text = input.trim();
  try {
    return new Intl.DateTimeFormat("en", { timeZone: text }).resolvedOptions().timeZone;
  } catch {
    throw new GatewayError(
      "not-acceptable",
      `"${text}" is not a time zone; use a name like Europe/Paris or America/New_York.`,
    );
  }
}

export function checkChannels(list: readonly string[]): Channel[] {
  const chosen = CHANNELS.filter((c) => list.includes(c));
  const unknown = list.filter((c) => !(CHANNELS as readonly string[]).includes(c));
  if (unknown.length)
    throw new GatewayError(
      "not-acceptable",
      `Unknown channel(s): ${unknown.join(", ")} (use ${CHANNELS.join(", ")}).`,
    );
  if (chosen.length === 0)
    throw new GatewayError("not-acceptable", "Choose at least one channel, or alerts cannot reach you.");
  return chosen;
}

export class ContactStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
  ) {}

  private keyOf(jid: string): string {
    return this.key("contact", jid.toLowerCase());
  }

  async get(jid: string): Promise<Contact> {
    const h = await this.redis.hgetall(this.keyOf(jid));
    // v1 is the only version so far; a later one maps older hashes here.
    const channels = h.channels ? checkChannelsLenient(h.channels) : [...DEFAULT_CHANNELS];
    return {
      ...(h.phone && h.phoneVerified === "1" ? { phone: h.phone } : {}),
      ...(h.email && h.emailVerified === "1" ? { email: h.email } : {}),
      ...(h.quietStart && h.quietEnd ? { quietStart: h.quietStart, quietEnd: h.quietEnd } : {}),
      ...(h.tz ? { tz: h.tz } : {}),
      channels,
    };
  }

  /** Stores the user's preferences (already validated); undefined quiet hours clear them. */
  async setPreferences(
    jid: string,
    prefs: { quietStart?: string; quietEnd?: string; tz?: string; channels: readonly Channel[] },
  ): Promise<void> {
    const key = this.keyOf(jid);
    const fields: Record<string, string> = { v: CONTACT_VERSION, channels: prefs.channels.join(",") };
    if (prefs.tz) fields.tz = prefs.tz;
    const multi = this.redis.multi().hset(key, fields);
    if (prefs.quietStart && prefs.quietEnd)
      multi.hset(key, { quietStart: prefs.quietStart, quietEnd: prefs.quietEnd });
    else multi.hdel(key, "quietStart", "quietEnd");
    if (!prefs.tz) multi.hdel(key, "tz");
    await multi.exec();
  }

  /** Stores an address whose code the user entered. */
  async setVerified(jid: string, kind: "phone" | "email", address: string): Promise<void> {
    await this.redis.hset(this.keyOf(jid), {
      v: CONTACT_VERSION,
      [kind]: address,
      [`${kind}Verified`]: "1",
    });
  }

  async removeAddress(jid: string, kind: "phone" | "email"): Promise<void> {
    await this.redis.hdel(this.keyOf(jid), kind, `${kind}Verified`);
  }

  async remove(jid: string): Promise<void> {
    await this.redis.del(this.keyOf(jid));
  }
}

function checkChannelsLenient(stored: string): Channel[] {
  return CHANNELS.filter((c) => stored.split(",").includes(c));
}
