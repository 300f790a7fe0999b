/**
 * Handlers of joining a channel: NAMES (353) fills the occupants, its end (366) shows the room to the
 * user's resources (after a redial, with what changed meanwhile), a refusal numeric fails the join, or the
 * user's pending channel command. Part of the handler table (handlers.ts).
 */
import type { InboundEvent } from "../../src/adapter.js";
import { joinEvents, leavePresence, nickChange } from "./events.js";
import { mircToText } from "./format.js";
import type { IrcMessage } from "./message.js";
import { joinError, occupantOf } from "./muc.js";
import { COMMAND_REFUSALS } from "./pending.js";
import type { Change, SessionState } from "./state.js";

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

/** RPL_ENDOFNAMES: the channel's occupants are known: the user's resources see the room (and what changed while away). */
export function endOfNames(state: SessionState, m: IrcMessage): Change[] {
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
    { kind: "roomShown", events },
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

export function names(state: SessionState, m: IrcMessage): Change[] {
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

/**
 * A refusal about a channel: of the user's own channel command (e.g. TOPIC, see pending.ts) when one
 * waits there, else of the JOIN (the user's resources get a MUC presence error and the channel is left).
 */
export function refusal(state: SessionState, m: IrcMessage): Change[] {
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
