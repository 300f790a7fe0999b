/**
 * IRC server replies (numerics, RFC 2812 §5 and the modern numerics on ircdocs.horse) as text a person reads:
 * the server's words without the protocol around them, e.g. `311 me bob ~bob host * :Bob` becomes
 * "bob is ~bob@host (Bob)". Pure functions.
 */
import { mircToText } from "./format.js";

/** A parsed server line (see message.ts; the first parameter is the recipient: our nick). */
export interface NumericLine {
  command: string;
  params: readonly string[];
}

/** Numerics that close a reply (RPL_ENDOFWHOIS "End of /WHOIS list." …): nothing to read in them. */
export const END_NUMERICS: ReadonlySet<string> = new Set([
  "219", // RPL_ENDOFSTATS
  "315", // RPL_ENDOFWHO
  "318", // RPL_ENDOFWHOIS
  "323", // RPL_LISTEND
  "347", // RPL_ENDOFINVITELIST
  "349", // RPL_ENDOFEXCEPTLIST
  "365", // RPL_ENDOFLINKS
  "366", // RPL_ENDOFNAMES
  "368", // RPL_ENDOFBANLIST
  "369", // RPL_ENDOFWHOWAS
  "374", // RPL_ENDOFINFO
  "376", // RPL_ENDOFMOTD
]);

const date = (seconds: string | undefined): string | undefined =>
  seconds !== undefined && /^\d{1,12}$/.test(seconds)
    ? new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z")
    : undefined;

/** 3725 → "1 h 2 min 5 s". */
export function duration(secondsText: string): string {
  let s = Number(secondsText);
  if (!Number.isFinite(s) || s < 0) return `${secondsText} s`;
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["min", 60],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)} ${unit}`);
      s %= size;
    }
  }
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(" ");
}

/** The words of a numeric with no special form: middle parameters, then the trailing text after ": ". */
function generic(params: readonly string[]): string {
  const last = params[params.length - 1];
  if (last === undefined) return "";
  if (params.length === 1) return last;
  const middle = params.slice(0, -1).join(" ");
  return last.includes(" ") ? `${middle}: ${last}` : `${middle} ${last}`;
}

type Format = (p: readonly string[]) => string;

/** A WHOIS line that is a sentence about the nick: "bob is using a secure connection". */
const aboutNick: Format = ([nick = "", ...rest]) => `${nick} ${rest.join(" ")}`;

/** Numerics read better in their own words (p: the parameters after our nick). */
const FORMATS: Readonly<Record<string, Format>> = {
  "221": (p) => `Your modes: ${p.join(" ")}`,
  "276": aboutNick, // RPL_WHOISCERTFP
  "307": aboutNick, // RPL_WHOISREGNICK
  "313": aboutNick, // RPL_WHOISOPERATOR
  "320": aboutNick, // RPL_WHOISSPECIAL
  "338": aboutNick, // RPL_WHOISACTUALLY
  "378": aboutNick, // RPL_WHOISHOST
  "379": aboutNick, // RPL_WHOISMODES
  "671": aboutNick, // RPL_WHOISSECURE
  "301": ([nick = "", text = ""]) => `${nick} is away: ${text}`,
  "303": ([nicks = ""]) => (nicks.trim() === "" ? "None of them is online." : `Online: ${nicks.trim()}`),
  "305": ([text = ""]) => text,
  "306": ([text = ""]) => text,
  "311": ([nick = "", user = "", host = "", , real = ""]) => `${nick} is ${user}@${host} (${real})`,
  "312": ([nick = "", server = "", info = ""]) => `${nick} is on ${server}${info ? ` (${info})` : ""}`,
  "314": ([nick = "", user = "", host = "", , real = ""]) => `${nick} was ${user}@${host} (${real})`,
  "317": ([nick = "", idle = "0", signon]) => {
    const on = date(signon);
    return `${nick} has been idle ${duration(idle)}${on ? `, signed on ${on}` : ""}`;
  },
  "319": ([nick = "", channels = ""]) => `${nick} is in ${channels.trim()}`,
  "322": ([channel = "", users = "", topic = ""]) =>
    `${channel} (${users} ${users === "1" ? "user" : "users"})${topic ? `: ${topic}` : ""}`,
  "324": ([channel = "", ...modes]) => `${channel} modes: ${modes.join(" ")}`,
  "329": ([channel = "", at]) => `${channel} was created ${date(at) ?? at ?? ""}`,
  "330": ([nick = "", account = ""]) => `${nick} is logged in as ${account}`,
  "332": ([channel = "", topic = ""]) => `${channel} topic: ${topic}`,
  "333": ([channel = "", by = "", at]) => `${channel} topic set by ${by}${date(at) ? ` on ${date(at)}` : ""}`,
  "352": ([channel = "", user = "", host = "", , nick = "", flags = "", rest = ""]) =>
    `${channel} ${nick} ${user}@${host} ${flags} (${rest.replace(/^\d+ /, "")})`,
  "353": ([, channel = "", names = ""]) => `${channel}: ${names.trim()}`,
  "372": ([text = ""]) => text.replace(/^- ?/, ""),
  "391": ([server = "", time = ""]) => `${server}: ${time}`,
};

/** The text of a numeric, or "" for one that only closes a reply. */
export function numericText(line: NumericLine): string {
  const code = line.command;
  if (END_NUMERICS.has(code)) return "";
  const params = line.params.slice(1);
  const text = (FORMATS[code] ?? generic)(params);
  return mircToText(text).trim();
}

/** The text of an end numeric (e.g. "bob: End of /WHOIS list."): shown only when nothing else came. */
export function endText(line: NumericLine): string {
  return mircToText(generic(line.params.slice(1))).trim();
}
