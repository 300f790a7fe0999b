/**
 * IRCv3 on top of matrix-org-irc, which by itself requests only `sasl` and does not parse message tags:
 * - every connection asks for the capabilities below that the server offers (CAP REQ after CAP LS 302);
 * - a line's tags (`@time=…;msgid=… :nick!u@h PRIVMSG …`) are parsed and kept on the library's Message as
 *   `tags`, so server-time becomes the XEP-0203 delay and msgid the stanza id;
 * - with echo-message the server repeats our own lines: the room reflection waits for that echo.
 */
import { createRequire } from "node:module";
import type { Client, Message } from "matrix-org-irc";

/** Capabilities the gateway uses when offered (sasl is added by the library when configured). */
export const WANTED_CAPS = [
  "server-time",
  "message-tags",
  "echo-message",
  "away-notify",
  "multi-prefix",
] as const;

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

/** The tags of a message parsed by the patched parser ({} when it had none). */
export function tagsOf(message: Message | undefined): Record<string, string> {
  const tags = (message as { tags?: unknown } | undefined)?.tags;
  return typeof tags === "object" && tags !== null ? (tags as Record<string, string>) : {};
}

type ParseMessage = (line: string, stripColors: boolean) => Message;
let patched = false;

/**
 * Teaches matrix-org-irc's line parser message tags, for every client in the process: the library calls
 * `parse_message.parseMessage` through the module's exports object, so replacing it there is enough.
 */
export function installTagParser(): void {
  if (patched) return;
  patched = true;
  const require = createRequire(import.meta.url);
  const mod = require("matrix-org-irc/lib/parse_message.js") as { parseMessage: ParseMessage };
  const original = mod.parseMessage;
  mod.parseMessage = (line, stripColors) => {
    if (!line.startsWith("@")) return original(line, stripColors);
    const space = line.indexOf(" ");
    const tags = parseTags(line.slice(1, space < 0 ? line.length : space));
    const message = original(space < 0 ? "" : line.slice(space + 1).trimStart(), stripColors);
    return Object.assign(message, { tags });
  };
}

/** Parses one server line as the client library does, tags included (installTagParser must have run). */
export function parseServerLine(line: string, stripColors = false): Message {
  const require = createRequire(import.meta.url);
  const mod = require("matrix-org-irc/lib/parse_message.js") as { parseMessage: ParseMessage };
  return mod.parseMessage(line, stripColors);
}

/** The library's internals used to request capabilities (not in its typings). */
interface CapInternals {
  onCapsList(): void;
  _send(...args: string[]): void;
  opt: { sasl?: boolean };
  state: {
    capabilities: { serverCapabilites: { caps: Set<string> }; userCapabilites: { caps: Set<string> } };
  };
}

/** Makes the client request WANTED_CAPS (those the server offers) along with sasl when configured. */
export function requestCaps(client: Client): void {
  const c = client as unknown as CapInternals;
  c.onCapsList = () => {
    const offered = c.state.capabilities.serverCapabilites.caps;
    const wanted: string[] = WANTED_CAPS.filter((cap) => offered.has(cap));
    if (c.opt.sasl) wanted.push("sasl");
    if (wanted.length === 0) c._send("CAP", "END");
    else c._send("CAP", "REQ", wanted.join(" "));
  };
}

/** Whether the server acknowledged a capability on this connection. */
export function hasCap(client: Client, cap: string): boolean {
  return (client as unknown as CapInternals).state.capabilities.userCapabilites.caps.has(cap);
}
