/**
 * What a server-line handler reads of a connection (SessionState) and what it returns (Change), with the
 * helpers handlers share to address the resources joined to a channel. See handlers.ts.
 */
import type { InboundEvent } from "../../src/adapter.js";
import type { ChannelLine } from "./archive.js";
import type { IrcMessage } from "./message.js";
import { occupantOf } from "./muc.js";
import type { ChannelView, Support } from "./roster.js";

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
  /**
   * Channel history: a line said in a synced channel, archived once (archive.ts), then delivered to its
   * members (`events`, possibly none: mentions only) each carrying the archive id as stanza-id.
   */
  | { kind: "archive"; channel: string; line: ChannelLine; events: InboundEvent[] }
  /** NAMES ended: the room shown to its resources, with the history each joining one asked for (mam.ts). */
  | { kind: "roomShown"; events: InboundEvent[] }
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
  /**
   * echo-message: one of our lines to the channel came back (archived as the channel saw it, when the
   * channel is synced), or was refused (404).
   */
  | { kind: "echoed"; channel: string; line?: ChannelLine }
  | { kind: "echoRefused"; channel: string; text: string }
  /** A channel command of the user was taken (its echo) or refused (a numeric with the server's text). */
  | { kind: "commandEchoed"; channel: string; command: string }
  | { kind: "commandRefused"; channel: string; numeric: string; text: string }
  /** A CTCP query to answer (to a channel: once per channel, see ctcp.ts). */
  | { kind: "ctcp"; to: string; reply: string; channel?: string }
  /** A private conversation is going on: the connection stays open. */
  | { kind: "conversation" }
  /** A NOTICE from the server itself to the user (see server-messages.ts). */
  | { kind: "serverNotice"; text: string }
  /** The message of the day: its start, one line, its end (or ERR_NOMOTD), see server-messages.ts. */
  | { kind: "motd"; part: "start" | "end" }
  | { kind: "motd"; part: "line"; text: string }
  /** A numeric, or our own NICK or user MODE: maybe the reply to a command the user sent (replies.ts). */
  | { kind: "reply"; message: IrcMessage };

export type Handler = (state: SessionState, message: IrcMessage) => Change[];

export const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();
export const isChannel = (target: string): boolean => /^[#&+!]/.test(target);

/** One event list per resource joined to the channel, once its occupants are shown. */
export function toMembers(
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

/** A channel line to archive once, delivered to the channel's resources with its archive id. */
export function archived(
  state: SessionState,
  channel: string,
  line: ChannelLine,
  make: (to: string, roomJid: string) => InboundEvent[],
): Change[] {
  const key = channel.toLowerCase();
  if (!state.channels.has(key) || !state.isSynced(key)) return [];
  const events = toMembers(state, channel, make).flatMap((c) => (c.kind === "deliver" ? c.events : []));
  return [{ kind: "archive", channel: key, line, events }];
}

export function occupantIn(state: SessionState, channel: string, nick: string, prefixes?: string) {
  const data = state.channel(channel);
  return occupantOf(prefixes ?? data?.users.get(nick) ?? "", data?.moderated ?? false);
}
