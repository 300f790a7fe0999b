/**
 * IRC → XMPP, as a table of pure handlers: `(state, message) → changes`, one per command or numeric. A
 * handler reads the connection's state as it was before the line and returns what follows from it: events
 * for the user's resources (`deliver`; a channel line as `archive`: kept once in the channel's archive, then
 * delivered with its archive id), and changes of the connection's state, which only IrcSession applies.
 * No handler writes to IRC, touches a socket or calls back into the adapter: tests call them with a state
 * and a parsed line (handlers.test.ts).
 */
import type { InboundEvent } from "../../src/adapter.js";
import { ctcpReply } from "./ctcp.js";
import { kickPresence, leavePresence, nickChange, occupantPresence, STATUS } from "./events.js";
import { mircToText, parseCtcp } from "./format.js";
import { NUMERIC, type IrcMessage } from "./message.js";
import { JOIN_ERRORS, occupantOf } from "./muc.js";
import { COMMAND_REFUSALS } from "./pending.js";
import { endOfNames, names, refusal } from "./joining.js";
import { parseModes, parseSupport, withPrefix } from "./roster.js";
import { MOTD_HANDLERS, serverNotice } from "./server-messages.js";
import {
  archived,
  isChannel,
  occupantIn,
  same,
  toMembers,
  type Change,
  type Handler,
  type SessionState,
} from "./state.js";

export type { Change, Handler, Member, SessionState } from "./state.js";
export { rosterEvents, roomNotice } from "./joining.js";

/**
 * PRIVMSG and NOTICE: channel lines (the one place a channel message, action or notice becomes events),
 * private messages, our own lines echoed back (echo-message), CTCP queries.
 */
function text(state: SessionState, m: IrcMessage): Change[] {
  const [target = "", raw = ""] = m.params;
  // A server's own notice (while connecting, or about the connection): from the server JID.
  if (m.nick === "") return serverNotice(m);
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
  // IRCv3 msgid is the stanza id (the same on a redelivery), server-time the XEP-0203 delay.
  const msgid = m.tags.msgid ? { msgid: m.tags.msgid } : {};
  // echo-message: the server repeats our own lines; the room reflection waited for them. The channel
  // history keeps the line as the channel saw it.
  if (self) {
    if (same(target, state.nick)) return [];
    const key = target.toLowerCase();
    const archive = state.channels.has(key) && state.isSynced(key);
    return [
      {
        kind: "echoed",
        channel: target,
        ...(archive ? { line: { nick: m.nick, body: shown, ...msgid } } : {}),
      },
    ];
  }
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
  // Per-channel forwarding setting: only lines that mention the user's nick (archived all the same).
  const forward = !state.mentionsOnly(target) || body.toLowerCase().includes(state.nick.toLowerCase());
  return archived(state, target, { nick: m.nick, body: shown, ...msgid }, (to, roomJid) =>
    forward
      ? [{ kind: "message", to, from: `${roomJid}/${m.nick}`, id, type: "groupchat", body: shown, ...delay }]
      : [],
  );
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
  const [channel = "", text = ""] = m.params;
  const subject = mircToText(text);
  return [
    ...(same(m.nick, state.nick) ? [{ kind: "commandEchoed" as const, channel, command: "TOPIC" }] : []),
    { kind: "topic", channel, topic: text },
    ...archived(state, channel, { ...(m.nick ? { nick: m.nick } : {}), body: "", subject }, (to, room) => [
      {
        kind: "message",
        to,
        from: m.nick ? `${room}/${m.nick}` : room,
        id: state.newId(),
        type: "groupchat",
        body: "",
        subject,
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

/** echo-message: a line the server refused (404) is never echoed; the message fails for its sender. */
function cannotSend(state: SessionState, m: IrcMessage): Change[] {
  const [, channel = "", why = "not allowed"] = m.params;
  return [
    { kind: "echoRefused", channel, text: `${state.server} refused the message in ${channel}: ${why}.` },
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
  ...MOTD_HANDLERS,
  ...Object.fromEntries(
    [...Object.keys(JOIN_ERRORS), ...Object.keys(COMMAND_REFUSALS)].map((n) => [n, refusal]),
  ),
};

/**
 * Lines that may answer a command the user sent (the server console, a channel list): every numeric, and
 * our own NICK and user MODE changes.
 */
function isReply(state: SessionState, m: IrcMessage): boolean {
  if (/^\d{3}$/.test(m.command)) return true;
  if (m.command === "NICK") return m.nick !== "" && same(m.nick, state.nick);
  return m.command === "MODE" && same(m.params[0] ?? "", state.nick);
}

/** What a server line changes (nothing for lines the gateway does not act on); replies last. */
export function handle(state: SessionState, message: IrcMessage): Change[] {
  const changes = HANDLERS[message.command]?.(state, message) ?? [];
  return isReply(state, message) ? [...changes, { kind: "reply", message }] : changes;
}
