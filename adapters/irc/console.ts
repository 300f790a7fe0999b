/**
 * The server console: a message from a user to a server JID (`irc.example.net@irc.example.org`) is one raw
 * IRC command on that user's connection to the server (opened first if needed, as a join would), e.g.
 * `WHOIS bob` or `/whois bob`. Only the commands in CONSOLE_COMMANDS go; those with a path of their own
 * (PRIVMSG, JOIN, PART, TOPIC…) are refused with a text saying which. CR, LF and NUL never reach IRC.
 *
 * The server's replies to the command (its numerics, and our own NICK or user MODE change) come back as ONE
 * message from the server JID, in readable words (numerics.ts): the reply ends with the command's end
 * numeric (RPL_ENDOFWHOIS…), or CONSOLE_QUIET_MS after its last line, or CONSOLE_REPLY_MS after it was
 * sent. One command at a time per connection, so replies are never mixed.
 */
import { randomUUID } from "node:crypto";
import type { InboundEvent, OutboundMessage, SendOutcome } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import type { IrcConnections } from "./connections.js";
import type { IrcMessage } from "./message.js";
import type { IrcSession } from "./session.js";
import { nickFromText } from "./muc.js";
import { END_NUMERICS, endText, numericText } from "./numerics.js";
import { WELCOME_WAIT_MS } from "./server-messages.js";
import { mircToText } from "./format.js";

/**
 * Commands a user may type to the server: queries about users, channels and the server, and the user's own
 * state (AWAY, NICK, MODE). Everything else is refused, so nothing bypasses the gateway's own paths.
 */
export const CONSOLE_COMMANDS: ReadonlySet<string> = new Set([
  "ADMIN",
  "AWAY",
  "INFO",
  "ISON",
  "LINKS",
  "LIST",
  "LUSERS",
  "MODE",
  "MOTD",
  "NAMES",
  "NICK",
  "STATS",
  "TIME",
  "USERHOST",
  "VERSION",
  "WHO",
  "WHOIS",
  "WHOWAS",
]);

/** Commands that have their own path through the gateway: what to use instead. */
export const PROPER_PATHS: Readonly<Record<string, string>> = {
  PRIVMSG: "write to the room or to the contact (nick%server) instead",
  NOTICE: "write to the room or to the contact (nick%server) instead",
  JOIN: "join the room #channel%server instead",
  PART: "leave the room instead",
  TOPIC: "change the room's subject instead",
  KICK: "kick the occupant from the room instead",
  INVITE: "invite from the room instead",
  QUIT: "leave the rooms of this server instead: the connection closes after the last one",
  CAP: "the gateway negotiates capabilities itself",
  AUTHENTICATE: "set a SASL password in the server's settings (ad-hoc commands) instead",
  PASS: "set a password in the server's settings (ad-hoc commands) instead",
  USER: "the gateway registers the connection itself",
  PING: "the gateway answers the server's pings itself",
  PONG: "the gateway answers the server's pings itself",
};

/**
 * RFC 2812 §2.3: a line is at most 512 bytes with its CR LF; the gateway's own prefix-less command must fit
 * in the 510 bytes before them.
 */
export const CONSOLE_MAX_BYTES = 510;
/** A reply is over once the server was silent this long after its last line (for commands with no end). */
export const CONSOLE_QUIET_MS = 1_500;
/** Longest a reply is collected after the command went out. */
export const CONSOLE_REPLY_MS = 10_000;
/** Lines of one reply shown; the rest is counted (a LIST of a big network is thousands). */
export const MAX_REPLY_LINES = 100;
/** Console commands of one connection waiting for the previous one's reply; more are refused. */
export const MAX_WAITING_COMMANDS = 5;

/** The numerics that end the reply of a command; a command not listed ends with silence (MODE, LUSERS…). */
const REPLY_ENDS: Readonly<Record<string, readonly string[]>> = {
  AWAY: ["305", "306"],
  INFO: ["374"],
  ISON: ["303"],
  LINKS: ["365"],
  LIST: ["323"],
  MOTD: ["376", "422"],
  NAMES: ["366"],
  STATS: ["219"],
  TIME: ["391"],
  USERHOST: ["302"],
  VERSION: ["351"],
  WHO: ["315"],
  WHOIS: ["318"],
  WHOWAS: ["369"],
};

/**
 * WHOIS and WHOWAS replies, about the nick in their second parameter. Only those about the nick the user
 * asked for belong to the reply: the NickServ check sends WHOIS queries of its own.
 */
const WHOIS_NUMERICS = new Set([
  "276",
  "301",
  "307",
  "310",
  "311",
  "312",
  "313",
  "314",
  "317",
  "318",
  "319",
  "320",
  "330",
  "335",
  "338",
  "369",
  "378",
  "379",
  "671",
]);

/** A console line: its command (upper case) and parameters, the last one possibly with spaces. */
export interface ConsoleCommand {
  command: string;
  params: string[];
}

/**
 * Reads what the user typed: an optional leading `/`, a command, parameters separated by spaces, and a last
 * parameter after ` :` that may hold spaces (RFC 2812 §2.3.1). Throws a GatewayError for what may not go.
 */
export function parseConsoleLine(body: string): ConsoleCommand {
  if (/[\r\n\0]/.test(body.replace(/^\s+|\s+$/g, "")))
    throw new GatewayError(
      "bad-request",
      "A console command is one line: line breaks (CR, LF) and NUL cannot be sent to IRC. Nothing was sent.",
    );
  const line = body.trim().replace(/^\//, "");
  if (line === "")
    throw new GatewayError(
      "bad-request",
      "Type an IRC command for the server, e.g. WHOIS nick. Nothing was sent.",
    );
  const bytes = Buffer.byteLength(line, "utf8");
  if (bytes > CONSOLE_MAX_BYTES)
    throw new GatewayError(
      "bad-request",
      `This command is ${bytes} bytes long; an IRC line holds at most ${CONSOLE_MAX_BYTES}. Nothing was sent.`,
    );
  const colon = line.indexOf(" :");
  const head = colon < 0 ? line : line.slice(0, colon);
  const words = head.split(/ +/).filter((w) => w !== "");
  const command = (words.shift() ?? "").toUpperCase();
  const params = colon < 0 ? words : [...words, line.slice(colon + 2)];
  const proper = PROPER_PATHS[command];
  if (proper !== undefined)
    throw new GatewayError(
      "not-allowed",
      `${command} is not sent from the server console: ${proper}. Nothing was sent.`,
    );
  if (!CONSOLE_COMMANDS.has(command))
    throw new GatewayError(
      "not-allowed",
      `${command || "This"} is not a command the server console sends; it sends ${[...CONSOLE_COMMANDS].join(", ")}. Nothing was sent.`,
    );
  return { command, params };
}

export interface ConsoleDeps {
  /** The user's session on a server, opened with their settings when needed. */
  openSession(user: string, server: string, nick: string): Promise<IrcSession>;
  /** Queues events for the user, in order. */
  emit(session: IrcSession, events: InboundEvent[]): Promise<unknown>;
  /** The session may close after the grace period if it has no channel. */
  release(session: IrcSession): void;
  /** The nick to connect with when the user has no connection yet. */
  nickFor(message: OutboundMessage): string;
}

/** The console's needs, from what sending messages has (see outbound.ts). */
export function consoleDeps(deps: {
  readonly connections: IrcConnections;
  emit(session: IrcSession, events: InboundEvent[]): Promise<unknown>;
  openSession(user: string, server: string, nick: string): Promise<IrcSession>;
}): ConsoleDeps {
  return {
    openSession: (user, server, nick) => deps.openSession(user, server, nick),
    emit: (session, events) => deps.emit(session, events),
    release: (session) => deps.connections.release(session),
    nickFor: (m) => m.registration?.nick ?? nickFromText(m.user.slice(0, m.user.lastIndexOf("@"))),
  };
}

/** Per connection: the console command running or waiting, and how many wait. */
const queues = new WeakMap<IrcSession, { tail: Promise<void>; waiting: number }>();

/** Sends a console message as an IRC command; the reply follows as a message from the server JID. */
export async function runConsoleCommand(
  deps: ConsoleDeps,
  m: OutboundMessage,
  server: string,
): Promise<SendOutcome> {
  if (m.type === "groupchat")
    throw new GatewayError("bad-request", `${m.toJid} is an IRC server, not a room: write to it in a chat.`);
  const { command, params } = parseConsoleLine(m.body);
  const session = await deps.openSession(m.user, server, deps.nickFor(m));
  const queue = queues.get(session) ?? { tail: Promise.resolve(), waiting: 0 };
  try {
    await session.ready;
    if (queue.waiting >= MAX_WAITING_COMMANDS)
      throw new GatewayError(
        "resource-constraint",
        `${MAX_WAITING_COMMANDS} console commands already wait for ${server}'s replies; send this one once they are answered.`,
      );
  } catch (err) {
    deps.release(session);
    throw err;
  }
  queues.set(session, queue);
  queue.waiting++;
  let sent!: () => void;
  let failed!: (err: unknown) => void;
  const written = new Promise<void>((resolve, reject) => {
    sent = resolve;
    failed = reject;
  });
  const run = async (): Promise<void> => {
    queue.waiting--;
    let reply: ReturnType<typeof collectReply> | undefined;
    try {
      // The connection's own MOTD must not be read as this command's reply.
      await session.welcomed(WELCOME_WAIT_MS);
      reply = collectReply(session, command, params);
      await session.sendHandingOff(() => m.handOff(), command, ...params);
    } catch (err) {
      reply?.cancel();
      failed(err);
      return;
    }
    sent();
    const lines = await reply.lines;
    if (lines.length === 0) return;
    await deps.emit(session, [
      {
        kind: "message",
        to: m.from,
        from: m.toJid,
        id: `irc-${randomUUID()}`,
        type: "chat",
        body: lines.join("\n"),
      },
    ]);
  };
  // Released once the reply is in: a connection opened for the console closes after the grace period.
  queue.tail = queue.tail
    .then(run)
    .catch(() => undefined)
    .finally(() => {
      if (queue.waiting === 0) deps.release(session);
    });
  await written;
  return { status: "accepted" };
}

/** Collects the server's reply to one command on the session (see the module comment). */
function collectReply(
  session: IrcSession,
  command: string,
  params: readonly string[],
): { lines: Promise<string[]>; cancel(): void } {
  const ends = new Set(REPLY_ENDS[command] ?? []);
  const asked = new Set(
    command === "WHOIS" || command === "WHOWAS" ? params.flatMap((p) => p.toLowerCase().split(",")) : [],
  );
  const shown: string[] = [];
  let more = 0;
  let lastEnd = "";
  let cancel: () => void = () => undefined;
  const lines = new Promise<string[]>((resolve) => {
    let quiet: NodeJS.Timeout | undefined;
    let stop: () => void = () => undefined;
    const done = () => {
      clearTimeout(quiet);
      clearTimeout(overall);
      stop();
      if (shown.length === 0 && lastEnd !== "") shown.push(lastEnd);
      if (more > 0) shown.push(`(${more} more lines left out)`);
      resolve(shown);
    };
    cancel = () => {
      shown.length = 0;
      lastEnd = "";
      more = 0;
      done();
    };
    const overall = setTimeout(done, CONSOLE_REPLY_MS);
    const add = (text: string) => {
      if (text === "") return;
      if (shown.length < MAX_REPLY_LINES) shown.push(text);
      else more++;
    };
    const line = (m: IrcMessage) => {
      const code = m.command;
      if (code === "NICK") add(`You are now known as ${m.params[0] ?? ""}.`);
      else if (code === "MODE") add(`Your modes: ${mircToText(m.params.slice(1).join(" "))}`);
      else {
        // The joins of this connection read these (NAMES, topic, a refusal); they are not this reply.
        if (joining(session, m.params)) return;
        if (WHOIS_NUMERICS.has(code) && !asked.has((m.params[1] ?? "").toLowerCase())) return;
        if (ends.has(code)) {
          if (END_NUMERICS.has(code)) lastEnd = endText(m);
          else add(numericText(m));
          return done();
        }
        if (END_NUMERICS.has(code)) return; // the end of another reply (e.g. a join's NAMES)
        add(numericText(m));
      }
      clearTimeout(quiet);
      quiet = setTimeout(done, CONSOLE_QUIET_MS);
    };
    // Only numerics and our own NICK and user MODE reach a reply listener (see handlers.ts).
    stop = session.listenReplies({ line, closed: done });
  });
  return { lines, cancel: () => cancel() };
}

/** Whether a reply is about a channel this connection is joining (JOIN sent, NAMES not complete yet). */
function joining(session: IrcSession, params: readonly string[]): boolean {
  return params.some((p) => session.isRequested(p) && !session.isSynced(p));
}
