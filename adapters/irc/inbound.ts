/**
 * IRC → XMPP: what the server tells a session (messages, actions, notices, joins, parts, quits, kicks, nick
 * and topic changes, join refusals, a lost connection) becomes events for every resource of the user that
 * joined the channel. No handler throws: matrix-org-irc calls them from the socket's data handler.
 */
import { randomUUID } from "node:crypto";
import type { Message } from "matrix-org-irc";
import type { InboundEvent } from "../../src/adapter.js";
import type { Logger } from "../../src/log.js";
import type { IrcConnections, IrcSession } from "./connections.js";
import { joinEvents, kickPresence, leavePresence, nickChange, occupantPresence, STATUS } from "./events.js";
import { ctcpReply, ReplyLimit } from "./ctcp.js";
import { mircToText } from "./format.js";
import { tagsOf } from "./ircv3.js";
import { joinError, occupantOf } from "./muc.js";
import { pendingCommands } from "./pending.js";
import { withArchiveId, type ChannelLine } from "./archive.js";

export interface InboundSink {
  readonly log: Logger;
  readonly connections: IrcConnections;
  /** Queues events for the user, in order. */
  emit(session: IrcSession, events: InboundEvent[]): void;
  /** The JID of an IRC nick on a server, or null when the nick cannot be a JID. */
  nickJid(nick: string, server: string): string | null;
  /** The session's channels changed: record them (for a rejoin after a gateway restart). */
  persist(session: IrcSession): void;
  /** True for the one connection that answers a CTCP query just sent to this channel (see ctcp.ts). */
  claimChannelCtcp(server: string, channel: string): Promise<boolean>;
  /** Channel history (mam.ts): archives a channel line once; its archive id (undefined: not archived). */
  archive?(session: IrcSession, channel: string, line: ChannelLine): Promise<string | undefined> | undefined;
  /** Channel history (mam.ts): queues a channel's join events with the history each joining resource wants. */
  emitJoin?(session: IrcSession, events: InboundEvent[]): void;
  /** Queues events that are still being made (a line waiting for its archive id), in order. */
  emitLater?(session: IrcSession, events: Promise<InboundEvent[]>): void;
}

const newId = (): string => `irc-${randomUUID()}`;

/** A message from the room itself (no occupant), e.g. about the connection to the IRC server. */
export function roomNotice(to: string, roomJid: string, body: string): InboundEvent {
  return { kind: "message", to, from: roomJid, id: newId(), type: "groupchat", body };
}

/** The occupants and subject of a channel, for one resource that joined it. */
export function rosterEvents(session: IrcSession, channel: string, to: string): InboundEvent[] {
  const member = session.channels.get(channel)?.get(to);
  if (!member) return [];
  const data = session.client.chanData(channel);
  const users = data?.users ?? new Map<string, string>();
  const moderated = data?.mode.includes("m") ?? false;
  const own = session.nick;
  return joinEvents({
    to,
    roomJid: member.roomJid,
    ownNick: own,
    requestedNick: member.requestedNick,
    others: [...users].filter(([nick]) => nick !== own).map(([nick, p]) => [nick, occupantOf(p, moderated)]),
    own: occupantOf(users.get(own) ?? "", moderated),
    topic: mircToText(session.client.chanData(channel)?.topic ?? ""),
    id: newId(),
  });
}

/** Attaches the IRC event handlers of one session. */
export function attachInbound(session: IrcSession, sink: InboundSink): void {
  const client = session.client;
  const server = session.server;
  /** One event per resource joined to the channel (synced channels only). */
  const toMembers = (
    channel: string,
    make: (to: string, roomJid: string) => InboundEvent[],
    archived?: Promise<string | undefined>,
  ): void => {
    const key = channel.toLowerCase();
    const members = session.channels.get(key);
    if (!members || !session.synced.has(key)) return;
    const events = [...members].flatMap(([to, m]) => make(to, m.roomJid));
    // Channel history: every member's copy carries the line's archive id as its stanza-id.
    if (archived && sink.emitLater) sink.emitLater(session, withArchiveId(events, archived));
    else sink.emit(session, events);
  };
  const safe =
    <A extends unknown[]>(name: string, handler: (...args: A) => void) =>
    (...args: A): void => {
      try {
        handler(...args);
      } catch (err) {
        sink.log.error({ err, server, event: name }, "IRC event not handled");
      }
    };

  const text = (from: string, to: string, body: string, action: boolean, message?: Message): void => {
    const shown = action ? `/me ${mircToText(body)}` : mircToText(body);
    // echo-message: the server repeats our own lines; the room reflection waited for them.
    // IRCv3 msgid is the stanza id (the same on a redelivery), server-time the XEP-0203 delay.
    const tags = tagsOf(message);
    const msgid = tags.msgid ? { msgid: tags.msgid } : {};
    if (from.toLowerCase() === session.nick.toLowerCase()) {
      if (to.toLowerCase() === session.nick.toLowerCase()) return;
      session.echoed(to);
      // Channel history (mam.ts): the user's own line, as the channel saw it.
      void sink.archive?.(session, to, { nick: from, body: shown, ...msgid });
      return;
    }
    const id = tags.msgid ? `irc-${tags.msgid}` : newId();
    const delay = tags.time ? { delay: tags.time } : {};
    if (to.toLowerCase() === session.nick.toLowerCase()) {
      const jid = sink.nickJid(from, server);
      if (jid === null) return;
      // A conversation keeps a channel-less connection open: the grace period starts again.
      sink.connections.release(session);
      sink.emit(session, [
        { kind: "message", to: session.user, from: jid, id, type: "chat", body: shown, nick: from, ...delay },
      ]);
      return;
    }
    // Channel history (mam.ts): archived once for all connections, whatever the user's forwarding setting.
    const archived = sink.archive?.(session, to, { nick: from, body: shown, ...msgid });
    // Per-channel forwarding setting: only lines that mention the user's nick.
    if (
      session.mentionsOnly.has(to.toLowerCase()) &&
      !body.toLowerCase().includes(session.nick.toLowerCase())
    )
      return;
    toMembers(
      to,
      (member, roomJid) => [
        {
          kind: "message",
          to: member,
          from: `${roomJid}/${from}`,
          id,
          type: "groupchat",
          body: shown,
          ...delay,
        },
      ],
      archived,
    );
  };

  client.on(
    "message",
    safe("message", (from: string, to: string, body: string, m?: Message) => text(from, to, body, false, m)),
  );
  client.on(
    "action",
    safe("action", (from: string, to: string, body: string, m?: Message) => text(from, to, body, true, m)),
  );
  client.on(
    "notice",
    safe("notice", (from: string, to: string, body: string, m?: Message) => text(from, to, body, false, m)),
  );
  // CTCP VERSION and PING: answered here, once per channel and within the connection's reply limit. The
  // library's own PING answer (from every connection, unlimited, past flood control) is turned off.
  client.ctcp = () => Promise.resolve();
  const replies = new ReplyLimit();
  const answer = async (from: string, to: string, query: string): Promise<void> => {
    const reply = ctcpReply(query);
    if (reply === null || from.toLowerCase() === session.nick.toLowerCase()) return;
    const toChannel = to.toLowerCase() !== session.nick.toLowerCase();
    if (toChannel && !(await sink.claimChannelCtcp(server, to))) return;
    if (!replies.tryTake()) {
      sink.log.debug({ jid: session.user, server, from }, "CTCP query not answered: reply limit reached");
      return;
    }
    await session.send("NOTICE", from, `\x01${reply}\x01`);
  };
  client.on(
    "ctcp-privmsg",
    safe("ctcp-privmsg", (from: string, to: string, query: string) => {
      answer(from, to, query).catch((err: unknown) => sink.log.debug({ err, server }, "CTCP reply not sent"));
    }),
  );

  client.on(
    "names",
    safe("names", (channel: string) => {
      const key = channel.toLowerCase();
      const members = session.channels.get(key);
      if (!members || session.synced.has(key)) return;
      session.synced.add(key);
      // Channel history (mam.ts): emitJoin adds the history each joining resource asked for.
      const joined = [
        ...[...members].flatMap(([to, m]) => [
          ...whileAway(key, to, m.roomJid),
          ...rosterEvents(session, key, to),
        ]),
        ...(session.outageNoticeSent
          ? [...members].map(([to, m]) =>
              roomNotice(to, m.roomJid, `Connected to ${server} again; you are back in ${channel}.`),
            )
          : []),
      ];
      if (sink.emitJoin) sink.emitJoin(session, joined);
      else sink.emit(session, joined);
      if (session.outageNoticeSent && [...session.channels.keys()].every((c) => session.synced.has(c)))
        session.outageNoticeSent = false;
      sink.persist(session);
    }),
  );
  client.on(
    "join",
    safe("join", (channel: string, nick: string) => {
      if (nick === session.nick) return;
      toMembers(channel, (to, room) => [occupantPresence(to, room, nick, occupantIn(channel, nick))]);
    }),
  );
  client.on(
    "part",
    safe("part", (channel: string, nick: string, reason: string | undefined) => {
      if (nick === session.nick) return;
      toMembers(channel, (to, room) => [leavePresence(to, room, nick, mircToText(reason ?? ""))]);
    }),
  );
  client.on(
    "quit",
    safe("quit", (nick: string, reason: string | undefined, channels: string[]) => {
      const why = mircToText(reason ?? "");
      for (const channel of channels) toMembers(channel, (to, room) => [leavePresence(to, room, nick, why)]);
    }),
  );
  client.on(
    "kick",
    safe("kick", (channel: string, who: string, by: string, reason: string | undefined) => {
      const self = who === session.nick;
      const why = mircToText(reason ?? "");
      toMembers(channel, (to, room) => [kickPresence(to, room, who, by, why, self)]);
      if (self) forget(channel);
    }),
  );
  // matrix-org-irc's own 'nick' event leaves out channels where the user has no prefix (it tests the
  // prefix string, "" being falsy) and keeps the old nick in them: read NICK here and fix its state.
  client.on(
    "raw",
    safe("nick", (m: Message) => {
      const [newNick] = m.args;
      if (m.command !== "NICK" || !m.nick || newNick === undefined) return;
      const self = newNick === session.nick;
      for (const [channel, data] of client.chans) {
        if (data.users.has(m.nick)) {
          data.users.delete(m.nick);
          data.users.set(newNick, "");
        } else if (!data.users.has(newNick)) continue;
        const occupant = occupantOf(data.users.get(newNick) ?? "");
        toMembers(channel, (to, room) => nickChange(to, room, m.nick ?? "", newNick, occupant, self));
      }
    }),
  );
  // Modes that change what occupants are: +o/+v… on a nick, or +m/-m on the channel (voiceless = visitor).
  const modeChange = (channel: string, _by: string, mode: string, arg?: string): void => {
    const users = client.chanData(channel)?.users;
    if (!users) return;
    const nicks = mode === "m" ? [...users.keys()] : arg !== undefined && users.has(arg) ? [arg] : [];
    for (const nick of nicks)
      toMembers(channel, (to, room) => [
        occupantPresence(
          to,
          room,
          nick,
          occupantIn(channel, nick),
          nick === session.nick ? [STATUS.SELF] : [],
        ),
      ]);
  };
  client.on("+mode", safe("+mode", modeChange));
  client.on(
    "raw",
    safe("modes", (m: Message) => {
      const channel = m.args[1];
      if (channel === undefined) return;
      // The answer to our MODE after a join: a moderated channel makes voiceless occupants visitors.
      if (m.command === "rpl_channelmodeis" && (m.args[2] ?? "").includes("m")) modeChange(channel, "", "m");
      // echo-message: a line the server refused is never echoed; the message fails for its sender.
      if (m.command === "err_cannotsendtochan")
        session.refused(
          channel,
          `${server} refused the message in ${channel}: ${m.args[2] ?? "not allowed"}.`,
        );
    }),
  );
  client.on("-mode", safe("-mode", modeChange));

  function occupantIn(channel: string, nick: string) {
    const data = client.chanData(channel);
    return occupantOf(data?.users.get(nick) ?? "", data?.mode.includes("m") ?? false);
  }

  // away-notify: an occupant going away (AWAY :reason) or coming back (AWAY) shows as their presence.
  client.on(
    "raw",
    safe("away", (m: Message) => {
      if (m.command !== "AWAY" || !m.nick || m.nick === session.nick) return;
      const nick = m.nick;
      // matrix-org-irc parses a bare "AWAY" (back) as one argument "AWAY".
      const reason = m.args[0] === "AWAY" && m.args.length === 1 ? undefined : m.args[0];
      for (const [channel, data] of client.chans) {
        if (!data.users.has(nick)) continue;
        const occupant = occupantIn(channel, nick);
        toMembers(channel, (to, room) => [
          {
            ...occupantPresence(to, room, nick, occupant),
            ...(reason ? { show: "away" as const, status: mircToText(reason) } : {}),
          },
        ]);
      }
    }),
  );
  client.on(
    "topic",
    safe("topic", (channel: string, topic: string, by: string) => {
      if (by.toLowerCase() === session.nick.toLowerCase()) pendingCommands(session).echoed(channel, "TOPIC");
      // RPL_TOPICWHOTIME during the join also lands here; the join shows the topic itself.
      const subject = mircToText(topic);
      const archived = session.synced.has(channel.toLowerCase())
        ? sink.archive?.(session, channel, { ...(by ? { nick: by } : {}), body: "", subject })
        : undefined;
      toMembers(
        channel,
        (to, room) => [
          {
            kind: "message",
            to,
            from: by ? `${room}/${by}` : room,
            id: newId(),
            type: "groupchat",
            body: "",
            subject,
          },
        ],
        archived,
      );
    }),
  );
  client.on(
    "raw",
    safe("raw", (m: Message) => {
      const channel = m.args[1];
      if (m.commandType !== "error" || m.command === undefined || channel === undefined) return;
      // A refusal of the user's own channel command (e.g. TOPIC): the sender gets it (see pending.ts).
      if (pendingCommands(session).refused(channel, m.command, m.args[2] ?? "refused")) return;
      const error = joinError(m.command, channel, server);
      const members = session.channels.get(channel.toLowerCase());
      if (!error || !members || session.synced.has(channel.toLowerCase())) return;
      sink.emit(
        session,
        [...members].map(([to, member]) => ({
          kind: "presence" as const,
          to,
          from: `${member.roomJid}/${member.requestedNick}`,
          type: "error" as const,
          error,
        })),
      );
      forget(channel);
    }),
  );
  // The connection is gone after it worked: redialed while the user stays in the rooms (connections.ts).
  client.on(
    "abort",
    safe("abort", () => {
      if (!session.registered || session.closed) return;
      sink.log.warn({ jid: session.user, server }, "IRC connection lost, redialing");
      sink.connections.lost(session);
    }),
  );

  /** After a redial: the occupants that left meanwhile, and the user's own nick if it had to change. */
  function whileAway(channel: string, to: string, roomJid: string): InboundEvent[] {
    const before = session.before;
    if (!before) return [];
    const now = session.client.chanData(channel)?.users ?? new Map<string, string>();
    const gone = (before.occupants.get(channel) ?? []).filter(
      (nick) => nick !== before.nick && !now.has(nick),
    );
    return [
      ...(before.nick !== session.nick
        ? nickChange(to, roomJid, before.nick, session.nick, occupantOf(now.get(session.nick) ?? ""), true)
        : []),
      ...gone.map((nick) => leavePresence(to, roomJid, nick, "")),
    ];
  }

  function forget(channel: string): void {
    session.forgetChannel(channel);
    sink.persist(session);
    sink.connections.release(session);
  }
}
