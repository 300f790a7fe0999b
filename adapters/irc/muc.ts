/**
 * IRC channel state → XEP-0045 terms: channel prefixes (RPL_NAMREPLY, ISUPPORT PREFIX) to affiliations and
 * roles, IRC join errors to MUC presence errors, and a valid IRC nick for users who gave none.
 */
import type { ErrorCondition } from "../../src/xmpp/errors.js";
import { NUMERIC } from "./message.js";
import { NICK_MAX_BYTES } from "./codec.js";

export type Affiliation = "owner" | "admin" | "member" | "outcast" | "none";
export type Role = "moderator" | "participant" | "visitor" | "none";

/** XEP-0045 §5: what an occupant is, from its IRC channel prefixes ("@", "+", "~&@"…). */
export interface Occupant {
  affiliation: Affiliation;
  role: Role;
}

/**
 * IRC prefixes, most powerful first (ISUPPORT PREFIX=(qaohv)~&@%+): founder and protected ops keep the
 * channel, ops run it (XEP-0045 moderator/admin, as biboumi maps @), half-ops moderate, voice may speak.
 */
const PREFIX_OCCUPANT: readonly [string, Occupant][] = [
  ["~", { affiliation: "owner", role: "moderator" }],
  ["&", { affiliation: "admin", role: "moderator" }],
  ["@", { affiliation: "admin", role: "moderator" }],
  ["%", { affiliation: "member", role: "moderator" }],
  ["+", { affiliation: "none", role: "participant" }],
];

/**
 * The occupant an IRC user with these prefixes is; the most powerful prefix wins. In a moderated channel
 * (+m) a user without voice cannot speak: an XEP-0045 visitor.
 */
export function occupantOf(prefixes: string, moderated = false): Occupant {
  const found = PREFIX_OCCUPANT.find(([p]) => prefixes.includes(p));
  if (found) return { ...found[1] };
  return { affiliation: "none", role: moderated ? "visitor" : "participant" };
}

/** IRC numerics (RFC 2812 §5.2) that refuse a JOIN, and what XEP-0045 says. */
export const JOIN_ERRORS: Readonly<Record<string, { condition: ErrorCondition; why: string }>> = {
  // XEP-0045 §7.2.7: banned users get forbidden.
  [NUMERIC.ERR_BANNEDFROMCHAN]: { condition: "forbidden", why: "you are banned from it" },
  // XEP-0045 §7.2.6: members-only rooms answer registration-required.
  [NUMERIC.ERR_INVITEONLYCHAN]: { condition: "registration-required", why: "it is invite-only" },
  // XEP-0045 §7.2.5: a password-protected room answers not-authorized.
  [NUMERIC.ERR_BADCHANNELKEY]: { condition: "not-authorized", why: "it needs a key (password)" },
  // XEP-0045 §7.2.10: a full room answers service-unavailable.
  [NUMERIC.ERR_CHANNELISFULL]: { condition: "service-unavailable", why: "it is full" },
  [NUMERIC.ERR_NOSUCHCHANNEL]: { condition: "item-not-found", why: "the server has no such channel" },
  [NUMERIC.ERR_TOOMANYCHANNELS]: { condition: "resource-constraint", why: "you joined too many channels" },
  [NUMERIC.ERR_NEEDREGGEDNICK]: { condition: "registration-required", why: "it needs a registered nick" },
};

/** A JOIN refusal as a MUC presence error, or null when the numeric is not about joining. */
export function joinError(
  command: string,
  channel: string,
  server: string,
): { condition: ErrorCondition; text: string } | null {
  const known = JOIN_ERRORS[command];
  if (!known) return null;
  return { condition: known.condition, text: `${server} refused to let you join ${channel}: ${known.why}.` };
}

// RFC 2812 §2.3.1 nick characters; anything else is dropped when a nick is made from a JID.
const NICK_FIRST = /[A-Za-z[\]\\`_^{|}]/;
const NICK_REST = /[A-Za-z0-9[\]\\`_^{|}-]/;
/** Nick used when nothing valid is left of the JID's localpart. */
export const FALLBACK_NICK = "xmpp-user";

/** A valid IRC nick from a JID localpart (or any text): invalid characters dropped, cut to NICK_MAX_BYTES. */
export function nickFromText(text: string): string {
  const chars = [...text].filter((c) => NICK_REST.test(c));
  while (chars.length > 0 && !NICK_FIRST.test(chars[0] ?? "")) chars.shift();
  const nick = chars.slice(0, NICK_MAX_BYTES).join("");
  return nick === "" ? FALLBACK_NICK : nick;
}
