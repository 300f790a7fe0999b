/**
 * IRC → XMPP, as a table of pure handlers: `(state, message) → changes`, one per command or numeric. A
 * handler reads the connection's state as it was before the line and returns what follows from it: events
 * for the user's resources (`deliver`) and changes of the connection's state, which only IrcSession applies.
 * No handler writes to IRC, touches a socket or calls back into the adapter: tests call them with a state
 * and a parsed line (handlers.test.ts).
 */
import type { InboundEvent } from "../../src/adapter.js";
import { ctcpReply } from "./ctcp.js";
import { joinEvents, kickPresence, leavePresence, nickChange, occupantPresence, STATUS } from "./events.js";
import { mircToText, parseCtcp } from "./format.js";
import { NUMERIC, type IrcMessage } from "./message.js";
import { JOIN_ERRORS, joinError, occupantOf } from "./muc.js";
import { COMMAND_REFUSALS } from "./pending.js";
import { parseModes, parseSupport, withPrefix, type ChannelView, type Support } from "./roster.js";

/** A user's resource in a channel: the room JID it joined as (the case it typed) and the nick it asked for. */
export interface Member {
  roomJid: string;
  requestedNick: string;
}

/** What a handler may read of a connection. */
export interface SessionState {
  readonly user: string;
  readonly server: string;
  readonly nick: string;
  /** Lowercased channel → full JID of each resource in it → how it joined. */
  readonly channels: ReadonlyMap<string, ReadonlyMap<string, Member>>;
  /** The channel's NAMES arrived: its occupants are shown. */
  isSynced(channel: string): boolean;
  /** IRC's side of a channel the connection is in. */
  channel(name: string): ChannelView | undefined;
  /** Every channel the connection is in, lowercased. */
  ircChannels(): Iterable<[string, ChannelView]>;
  readonly support: Support;
  /** Only lines mentioning the user's nick are forwarded from this channel. */
  mentionsOnly(channel: string): boolean;
  /** A channel command (TOPIC) of the user waits for the server's answer there. */
  awaitsCommand(channel: string): boolean;
  /** The user was told of an outage: tell them it is over once the channels are back. */
  readonly outageNoticeSent: boolean;
  /** Before a redial: the user's nick and the occupants of each channel, to show what changed meanwhile. */
  readonly before: { nick: string; occupants: ReadonlyMap<string, readonly string[]> } | undefined;
  /** The contact JID of an IRC nick on this server, or null when the nick cannot be a JID. */
  nickJid(nick: string): string | null;
  /** A fresh stanza id. */
  newId(): string;
}

/** What follows from a line; IrcSession applies these in order. */
export type Change =
  | { kind: "deliver"; events: InboundEvent[] }
  | { kind: "support"; support: Support }
  /** The connection joined (or left) a channel on IRC. */
  | { kind: "joined"; channel: string }
  | { kind: "parted"; channel: string }
  | { kind: "user"; channel: string; nick: string; prefixes: string }
  | { kind: "userGone"; channel: string; nick: string }
  | { kind: "quit"; nick: string }
  | { kind: "renamed"; from: string; to: string; self: boolean }
  | { kind: "moderated"; channel: string; moderated: boolean }
  | { kind: "topic"; channel: string; topic: string }
  /** NAMES ended: the channel's occupants are shown from now on. */
  | { kind: "synced"; channel: string }
  /** The user is out of the channel (kicked, join refused). */
  | { kind: "forget"; channel: string }
  /** echo-message: one of our lines to the channel came back, or was refused (404). */
  | { kind: "echoed"; channel: string }
  | { kind: "echoRefused"; channel: string; text: string }
  /** A channel command of the user was taken (its echo) or refused (a numeric with the server's text). */
  | { kind: "commandEchoed"; channel: string; command: string }
  | { kind: "commandRefused"; channel: string; numeric: string; text: string }
  /** A CTCP query to answer (to a channel: once per channel, see ctcp.ts). */
  | { kind: "ctcp"; to: string; reply: string; channel?: string }
  /** A private conversation is going on: the connection stays open. */
  | { kind: "conversation" };

export type Handler = (state: SessionState, message: IrcMessage) => Change[];

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
const isChannel = (target: string): boolean => /^[#&+!]/.test(target);

/** One event list per resource joined to the channel, once its occupants are shown. */
function toMembers(
  state: SessionState,
  channel: string,
  make: (to: string, roomJid: string) => InboundEvent[],
): Change[] {
  const key = channel.toLowerCase();
  const members = state.channels.get(key);
  if (!members || !state.isSynced(key)) return [];
  const events = [...members].flatMap(([to, m]) => make(to, m.roomJid));
  return events.length === 0 ? [] : [{ kind: "deliver", events }];
}

function occupantIn(state: SessionState, channel: string, nick: string, prefixes?: string) {
  const data = state.channel(channel);
  return occupantOf(prefixes ?? data?.users.get(nick) ?? "", data?.moderated ?? false);
}

/** The occupants and subject of a channel, for one resource that joined it. */
export function rosterEvents(state: SessionState, channel: string, to: string): InboundEvent[] {
  const member = state.channels.get(channel)?.get(to);
  if (!member) return [];
  const data = state.channel(channel);
  const users = data?.users ?? new Map<string, string>();
  const moderated = data?.moderated ?? false;
  const own = state.nick;
  return joinEvents({
    to,
    roomJid: member.roomJid,
    ownNick: own,
    requestedNick: member.requestedNick,
    others: [...users].filter(([nick]) => nick !== own).map(([nick, p]) => [nick, occupantOf(p, moderated)]),
    own: occupantOf(users.get(own) ?? "", moderated),
    topic: mircToText(data?.topic ?? ""),
    id: state.newId(),
  });
}

/**
 * PRIVMSG and NOTICE: channel lines (the one place a channel message, action or notice becomes events),
 * private messages, our own lines echoed back (echo-message), CTCP queries.
 */
function text(state: SessionState, m: IrcMessage): Change[] {
  const [target = "", raw = ""] = m.params;
  // A server's notice (during registration, or about the connection) is not shown.
  if (m.nick === "") return [];
  const notice = m.command === "NOTICE";
  const ctcp = parseCtcp(raw);
  const action = ctcp?.command === "ACTION";
  const self = same(m.nick, state.nick);
  if (ctcp && !action) {
    // A NOTICE carrying CTCP is a reply, for no one here; a query is answered (never our own).
    const reply = notice || self ? null : ctcpReply(`${ctcp.command}${ctcp.params ? ` ${ctcp.params}` : ""}`);
    if (reply === null) return [];
    return [{ kind: "ctcp", to: m.nick, reply, ...(isChannel(target) ? { channel: target } : {}) }];
  }
  const body = action ? (ctcp?.params ?? "") : raw;
  const shown = action ? `/me ${mircToText(body)}` : mircToText(body);
  // echo-message: the server repeats our own lines; the room reflection waited for them.
  if (self) return same(target, state.nick) ? [] : [{ kind: "echoed", channel: target }];
  // IRCv3 msgid is the stanza id (the same on a redelivery), server-time the XEP-0203 delay.
  const id = m.tags.msgid ? `irc-${m.tags.msgid}` : state.newId();
  const delay = m.tags.time ? { delay: m.tags.time } : {};
  if (same(target, state.nick)) {
    const jid = state.nickJid(m.nick);
    if (jid === null) return [];
    const event: InboundEvent = {
      kind: "message",
      to: state.user,
      from: jid,
      id,
      type: "chat",
      body: shown,
      nick: m.nick,
      ...delay,
    };
    return [{ kind: "conversation" }, { kind: "deliver", events: [event] }];
  }
  // Per-channel forwarding setting: only lines that mention the user's nick.
  if (state.mentionsOnly(target) && !body.toLowerCase().includes(state.nick.toLowerCase())) return [];
  return toMembers(state, target, (to, roomJid) => [
    { kind: "message", to, from: `${roomJid}/${m.nick}`, id, type: "groupchat", body: shown, ...delay },
  ]);
}

function join(state: SessionState, m: IrcMessage): Change[] {
  const [channel = ""] = m.params;
  if (same(m.nick, state.nick)) return [{ kind: "joined", channel }];
  return [
    { kind: "user", channel, nick: m.nick, prefixes: "" },
    ...toMembers(state, channel, (to, room) => [
      occupantPresence(to, room, m.nick, occupantIn(state, channel, m.nick, "")),
    ]),
  ];
}

function part(state: SessionState, m: IrcMessage): Change[] {
  const [channel = "", reason = ""] = m.params;
  if (same(m.nick, state.nick)) return [{ kind: "parted", channel }];
  return [
    ...toMembers(state, channel, (to, room) => [leavePresence(to, room, m.nick, mircToText(reason))]),
    { kind: "userGone", channel, nick: m.nick },
  ];
}

function quit(state: SessionState, m: IrcMessage): Change[] {
  const why = mircToText(m.params[0] ?? "");
  const changes: Change[] = [];
  for (const [channel, data] of state.ircChannels())
    if (data.users.has(m.nick))
      changes.push(...toMembers(state, channel, (to, room) => [leavePresence(to, room, m.nick, why)]));
  return [...changes, { kind: "quit", nick: m.nick }];
}

function kick(state: SessionState, m: IrcMessage): Change[] {
  const [channel = "", who = "", reason = ""] = m.params;
  const self = same(who, state.nick);
  const why = mircToText(reason);
  return [
    ...toMembers(state, channel, (to, room) => [kickPresence(to, room, who, m.nick, why, self)]),
    self ? { kind: "forget", channel } : { kind: "userGone", channel, nick: who },
  ];
}

function nick(state: SessionState, m: IrcMessage): Change[] {
  const [to = ""] = m.params;
  if (to === "" || m.nick === "") return [];
  const self = same(m.nick, state.nick);
  const changes: Change[] = [];
  for (const [channel, data] of state.ircChannels()) {
    const prefixes = data.users.get(m.nick);
    if (prefixes === undefined) continue;
    const occupant = occupantOf(prefixes, data.moderated);
    changes.push(
      ...toMembers(state, channel, (member, room) => nickChange(member, room, m.nick, to, occupant, self)),
    );
  }
  return [...changes, { kind: "renamed", from: m.nick, to, self }];
}

/** Modes that change what occupants are: +o/+v… on a nick, or +m/-m on the channel (voiceless = visitor). */
function mode(state: SessionState, m: IrcMessage): Change[] {
  const [channel = "", modes = "", ...args] = m.params;
  const data = state.channel(channel);
  if (!isChannel(channel) || !data) return [];
  const users = new Map(data.users);
  let moderated = data.moderated;
  const changes: Change[] = [];
  const show = (nick: string) =>
    toMembers(state, channel, (to, room) => [
      occupantPresence(
        to,
        room,
        nick,
        occupantOf(users.get(nick) ?? "", moderated),
        same(nick, state.nick) ? [STATUS.SELF] : [],
      ),
    ]);
  for (const change of parseModes(modes, args, state.support)) {
    if (change.mode === "m") {
      moderated = change.set;
      changes.push({ kind: "moderated", channel, moderated }, ...[...users.keys()].flatMap(show));
    } else if (state.support.prefixes.has(change.mode) && change.arg !== undefined && users.has(change.arg)) {
      const prefixes = withPrefix(users.get(change.arg) ?? "", change, state.support);
      users.set(change.arg, prefixes);
      changes.push({ kind: "user", channel, nick: change.arg, prefixes }, ...show(change.arg));
    }
  }
  return changes;
}

/** RPL_CHANNELMODEIS, the answer to our MODE after a join: a moderated channel makes voiceless occupants visitors. */
function channelModeIs(state: SessionState, m: IrcMessage): Change[] {
  const [, channel = "", modes = ""] = m.params;
  if (!modes.includes("m") || !state.channel(channel)) return [];
  return mode(state, { ...m, params: [channel, "+m"] });
}

function topic(state: SessionState, m: IrcMessage): Change[] {
  const [channel = "", subject = ""] = m.params;
  return [
    ...(same(m.nick, state.nick) ? [{ kind: "commandEchoed" as const, channel, command: "TOPIC" }] : []),
    { kind: "topic", channel, topic: subject },
    ...toMembers(state, channel, (to, room) => [
      {
        kind: "message",
        to,
        from: m.nick ? `${room}/${m.nick}` : room,
        id: state.newId(),
        type: "groupchat",
        body: "",
        subject: mircToText(subject),
      },
    ]),
  ];
}

/** away-notify: an occupant going away (AWAY :reason) or coming back (AWAY) shows as their presence. */
function away(state: SessionState, m: IrcMessage): Change[] {
  if (m.nick === "" || same(m.nick, state.nick)) return [];
  const reason = m.params[0];
  const changes: Change[] = [];
  for (const [channel, data] of state.ircChannels()) {
    if (!data.users.has(m.nick)) continue;
    const occupant = occupantIn(state, channel, m.nick);
    changes.push(
      ...toMembers(state, channel, (to, room) => [
        {
          ...occupantPresence(to, room, m.nick, occupant),
          ...(reason ? { show: "away" as const, status: mircToText(reason) } : {}),
        },
      ]),
    );
  }
  return changes;
}

/** RPL_ENDOFNAMES: the channel's occupants are known: the user's resources see the room (and what changed while away). */
function endOfNames(state: SessionState, m: IrcMessage): Change[] {
  const [, channel = ""] = m.params;
  const key = channel.toLowerCase();
  const members = state.channels.get(key);
  if (!members || state.isSynced(key)) return [];
  const events = [...members].flatMap(([to, member]) => [
    ...whileAway(state, key, to, member.roomJid),
    ...rosterEvents(state, key, to),
  ]);
  if (state.outageNoticeSent)
    for (const [to, member] of members)
      events.push(
        roomNotice(
          state,
          to,
          member.roomJid,
          `Connected to ${state.server} again; you are back in ${channel}.`,
        ),
      );
  return [
    { kind: "deliver", events },
    { kind: "synced", channel: key },
  ];
}

/** After a redial: the occupants that left meanwhile, and the user's own nick if it had to change. */
function whileAway(state: SessionState, channel: string, to: string, roomJid: string): InboundEvent[] {
  const before = state.before;
  if (!before) return [];
  const now = state.channel(channel)?.users ?? new Map<string, string>();
  const gone = (before.occupants.get(channel) ?? []).filter((n) => n !== before.nick && !now.has(n));
  return [
    ...(before.nick !== state.nick
      ? nickChange(to, roomJid, before.nick, state.nick, occupantOf(now.get(state.nick) ?? ""), true)
      : []),
    ...gone.map((n) => leavePresence(to, roomJid, n, "")),
  ];
}

/** A message from the room itself (no occupant), e.g. about the connection to the IRC server. */
export function roomNotice(
  state: Pick<SessionState, "newId">,
  to: string,
  roomJid: string,
  body: string,
): InboundEvent {
  return { kind: "message", to, from: roomJid, id: state.newId(), type: "groupchat", body };
}

function names(state: SessionState, m: IrcMessage): Change[] {
  const [, , channel = "", list = ""] = m.params;
  const chars = new Set(state.support.prefixes.values());
  return list
    .split(" ")
    .filter(Boolean)
    .map((entry) => {
      let i = 0;
      while (i < entry.length && chars.has(entry.charAt(i))) i++;
      return { kind: "user", channel, nick: entry.slice(i), prefixes: entry.slice(0, i) };
    });
}

/** echo-message: a line the server refused (404) is never echoed; the message fails for its sender. */
function cannotSend(state: SessionState, m: IrcMessage): Change[] {
  const [, channel = "", why = "not allowed"] = m.params;
  return [
    { kind: "echoRefused", channel, text: `${state.server} refused the message in ${channel}: ${why}.` },
  ];
}

/**
 * A refusal about a channel: of the user's own channel command (e.g. TOPIC, see pending.ts) when one
 * waits there, else of the JOIN (the user's resources get a MUC presence error and the channel is left).
 */
function refusal(state: SessionState, m: IrcMessage): Change[] {
  const [, channel = "", serverText = "refused"] = m.params;
  if (COMMAND_REFUSALS[m.command] !== undefined && state.awaitsCommand(channel))
    return [{ kind: "commandRefused", channel, numeric: m.command, text: serverText }];
  const error = joinError(m.command, channel, state.server);
  const key = channel.toLowerCase();
  const members = state.channels.get(key);
  if (!error || !members || state.isSynced(key)) return [];
  const events = [...members].map(([to, member]) => ({
    kind: "presence" as const,
    to,
    from: `${member.roomJid}/${member.requestedNick}`,
    type: "error" as const,
    error,
  }));
  return [
    { kind: "deliver", events },
    { kind: "forget", channel: key },
  ];
}

/** Every command and numeric the gateway acts on: the one place server lines are dispatched. */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  PRIVMSG: text,
  NOTICE: text,
  JOIN: join,
  PART: part,
  QUIT: quit,
  KICK: kick,
  NICK: nick,
  MODE: mode,
  TOPIC: topic,
  AWAY: away,
  [NUMERIC.RPL_ISUPPORT]: (state, m) => [
    { kind: "support", support: parseSupport(m.params.slice(1), state.support) },
  ],
  [NUMERIC.RPL_CHANNELMODEIS]: channelModeIs,
  [NUMERIC.RPL_TOPIC]: (_state, m) => [
    { kind: "topic", channel: m.params[1] ?? "", topic: m.params[2] ?? "" },
  ],
  [NUMERIC.RPL_NAMREPLY]: names,
  [NUMERIC.RPL_ENDOFNAMES]: endOfNames,
  [NUMERIC.ERR_CANNOTSENDTOCHAN]: cannotSend,
  ...Object.fromEntries(
    [...Object.keys(JOIN_ERRORS), ...Object.keys(COMMAND_REFUSALS)].map((n) => [n, refusal]),
  ),
};

/** What a server line changes (nothing for lines the gateway does not act on). */
export function handle(state: SessionState, message: IrcMessage): Change[] {
  return HANDLERS[message.command]?.(state, message) ?? [];
}
