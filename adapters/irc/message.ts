/**
 * One IRC line ↔ its parts (RFC 1459 §2.3.1, ircdocs "Messages", IRCv3 message-tags): the pure parser and
 * formatter of the gateway's own line layer (see link.ts). Numerics stay three-digit strings ("001"); their
 * names are in NUMERIC below.
 */

/** A server line, parsed. */
export interface IrcMessage {
  /** IRCv3 tags (`@time=…;msgid=…`), unescaped; {} when the line had none. */
  tags: Record<string, string>;
  /** The source (`nick!user@host` or a server name), "" when the line had none. */
  prefix: string;
  /** The nick of a `nick!user@host` source (or the server name), "" when there was no source. */
  nick: string;
  /** Commands uppercased (PRIVMSG), numerics as sent ("001"). */
  command: string;
  /** Middle parameters and the trailing one, in order. */
  params: string[];
}

/** Numerics the gateway acts on (RFC 2812 §5, IRCv3 SASL), by their usual names. */
export const NUMERIC = {
  RPL_WELCOME: "001",
  RPL_ISUPPORT: "005",
  RPL_CHANNELMODEIS: "324",
  RPL_TOPIC: "332",
  RPL_TOPICWHOTIME: "333",
  RPL_NAMREPLY: "353",
  RPL_ENDOFNAMES: "366",
  RPL_WHOISUSER: "311",
  RPL_WHOISSERVER: "312",
  RPL_ENDOFWHOIS: "318",
  ERR_NOSUCHNICK: "401",
  ERR_NOSUCHCHANNEL: "403",
  ERR_CANNOTSENDTOCHAN: "404",
  ERR_TOOMANYCHANNELS: "405",
  ERR_ERRONEUSNICKNAME: "432",
  ERR_NICKNAMEINUSE: "433",
  ERR_NICKCOLLISION: "436",
  ERR_NOTONCHANNEL: "442",
  ERR_CHANNELISFULL: "471",
  ERR_INVITEONLYCHAN: "473",
  ERR_BANNEDFROMCHAN: "474",
  ERR_BADCHANNELKEY: "475",
  ERR_NEEDREGGEDNICK: "477",
  ERR_CHANOPRIVSNEEDED: "482",
  RPL_SASLSUCCESS: "903",
  ERR_SASLFAIL: "904",
  ERR_SASLTOOLONG: "905",
  ERR_SASLABORTED: "906",
  ERR_SASLALREADY: "907",
} as const;

/** IRCv3 message-tags §escaping: `\:` `;`, `\s` space, `\\` backslash, `\r` CR, `\n` LF. */
const TAG_ESCAPES: Readonly<Record<string, string>> = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };

/** Parses the tags part of a line (without the leading @). */
export function parseTags(raw: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const item of raw.split(";")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? "" : item.slice(eq + 1).replace(/\\(.?)/g, (_m, c: string) => TAG_ESCAPES[c] ?? c);
    tags[key] = value;
  }
  return tags;
}

/** The next space-separated word of `line` from `at` (runs of spaces skipped), and where the rest starts. */
function word(line: string, at: number): [string, number] {
  const end = line.indexOf(" ", at);
  const w = end < 0 ? line.slice(at) : line.slice(at, end);
  let next = end < 0 ? line.length : end;
  while (line[next] === " ") next++;
  return [w, next];
}

/**
 * The nick of a source: `nick!user@host`, `nick@host` or a bare nick; "" for a server (its name has a dot,
 * which a nick cannot hold, RFC 2812 §2.3.1) or no source.
 */
function nickOf(prefix: string): string {
  const end = prefix.search(/[!@]/);
  if (end >= 0) return prefix.slice(0, end);
  return prefix.includes(".") ? "" : prefix;
}

/** Parses one line (without CR LF); null for a line with no command. */
export function parseLine(line: string): IrcMessage | null {
  let at = 0;
  while (line[at] === " ") at++;
  let tags: Record<string, string> = {};
  let prefix = "";
  if (line[at] === "@") {
    const [raw, next] = word(line, at + 1);
    tags = parseTags(raw);
    at = next;
  }
  if (line[at] === ":") {
    [prefix, at] = word(line, at + 1);
  }
  const [rawCommand, start] = word(line, at);
  if (rawCommand === "") return null;
  const params: string[] = [];
  at = start;
  while (at < line.length) {
    if (line[at] === ":") {
      params.push(line.slice(at + 1));
      break;
    }
    const [param, next] = word(line, at);
    params.push(param);
    at = next;
  }
  return { tags, prefix, nick: nickOf(prefix), command: rawCommand.toUpperCase(), params };
}

/**
 * One line to send, without CR LF: the last parameter becomes trailing (`:`) when it needs to (empty, has a
 * space, starts with `:`). The caller has refused CR, LF and NUL already.
 */
export function formatLine(command: string, params: readonly string[]): string {
  const parts = [command];
  params.forEach((p, i) => {
    const last = i === params.length - 1;
    parts.push(last && (p === "" || p.includes(" ") || p.startsWith(":")) ? `:${p}` : p);
  });
  return parts.join(" ");
}
