/**
 * Who a recipient is and how to reach them, read from the directory users and admins keep (their ad-hoc
 * commands and the admin page write it):
 * - per bare JID a hash `contact:<jid>`: `phone` (E.164), `phoneVerified` ("1"/"0"), `email`,
 *   `emailVerified`, `quietStart`/`quietEnd` ("HH:MM"), `tz` (IANA zone), `channels` (comma list of
 *   xmpp,sms,email the user accepts; absent: all);
 * - per group a list `group:<name>` of bare JIDs in rotation order (the first is on call).
 *
 * An unverified phone number or address is never used. The SMS adapter's registration holds how a user
 * sends (a number of the gateway's), not the user's own phone, and the email adapter's alias is an address
 * that comes back to the user's XMPP account: neither is a way to reach the person off XMPP, so neither is
 * read here.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { CHANNELS, type Channel } from "./config.js";

/** Most members read from one group. */
export const MAX_GROUP_MEMBERS = 10_000;

export interface Contact {
  jid: string;
  /** Verified E.164 number, if any. */
  phone?: string;
  /** Verified address, if any. */
  email?: string;
  /** Channels the user accepts. */
  channels: ReadonlySet<Channel>;
  quiet?: { start: string; end: string; tz: string };
}

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** Minutes since midnight of `at` in zone `tz` (UTC when the zone is unknown). */
function minutesIn(at: Date, tz: string): number {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz,
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(at);
  } catch {
    parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: "UTC",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(at);
  }
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return get("hour") * 60 + get("minute");
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Whether `at` falls in the contact's quiet hours (a range may span midnight: 22:00–07:00). */
export function inQuietHours(contact: Contact, at: Date): boolean {
  if (!contact.quiet) return false;
  const now = minutesIn(at, contact.quiet.tz);
  const start = toMinutes(contact.quiet.start);
  const end = toMinutes(contact.quiet.end);
  if (start === end) return false;
  return start < end ? now >= start && now < end : now >= start || now < end;
}

export class Directory {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
  ) {}

  async contact(jid: string): Promise<Contact> {
    const h = await this.redis.hgetall(this.key("contact", jid.toLowerCase()));
    const accepted = (h.channels ?? "")
      .split(",")
      .map((c) => c.trim())
      .filter((c): c is Channel => (CHANNELS as readonly string[]).includes(c));
    return {
      jid,
      ...(h.phone && h.phoneVerified === "1" ? { phone: h.phone } : {}),
      ...(h.email && h.emailVerified === "1" ? { email: h.email } : {}),
      channels: new Set(accepted.length ? accepted : CHANNELS),
      ...(h.quietStart && h.quietEnd && HHMM.test(h.quietStart) && HHMM.test(h.quietEnd)
        ? { quiet: { start: h.quietStart, end: h.quietEnd, tz: h.tz || "UTC" } }
        : {}),
    };
  }

  /** A group's members in rotation order (empty when there is no such group). */
  async group(name: string): Promise<string[]> {
    return this.redis.lrange(this.key("group", name), 0, MAX_GROUP_MEMBERS - 1);
  }
}
