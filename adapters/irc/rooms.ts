/**
 * XMPP → IRC presence: a resource joining a room (`#chan%server@irc.example.org/nick`) opens or reuses the
 * user's connection and JOINs the channel; the room is shown once NAMES arrived (handlers.ts). Leaving the
 * room PARTs the channel when the user's last resource left it, and so does a resource whose messages bounce
 * because it is gone. The one place joins and leaves are routed.
 */
import type { InboundEvent, OutboundPresence, UserReport } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { checkNick, type IrcTarget } from "./codec.js";
import type { IrcConfig } from "./config.js";
import type { IrcConnections, IrcSession } from "./connections.js";
import { leavePresence, STATUS } from "./events.js";
import { rosterEvents } from "./handlers.js";
import type { Emitted } from "./store-queue.js";

/** What joining and leaving need from the adapter. */
export interface RoomDeps {
  readonly config: IrcConfig;
  readonly connections: IrcConnections;
  /** The IRC target of a JID on the gateway's domain (throws for servers not allowed). */
  target(jid: string): IrcTarget;
  /** Queues events for the user, in order. */
  emit(session: IrcSession, events: readonly Emitted[]): Promise<unknown>;
  /** Records the session's channels (for a rejoin after a restart). */
  persist(session: IrcSession): void;
  /** The user's session on a server, opened with their settings when needed. */
  openSession(user: string, server: string, nick: string): Promise<IrcSession>;
  /** Channel history (mam.ts): this user may read the archive; the history is sent once in. */
  joining?(p: OutboundPresence): Promise<void>;
  /** Channel history (mam.ts): a join's events with the history each joining resource asked for. */
  joinHistory?(session: IrcSession, events: InboundEvent[]): Promise<readonly InboundEvent[]>;
}

export const resourceOf = (jid: string): string => {
  const slash = jid.indexOf("/");
  return slash < 0 ? "" : jid.slice(slash + 1);
};

export async function joinRoom(deps: RoomDeps, p: OutboundPresence): Promise<void> {
  const target = deps.target(p.toJid);
  if (target.kind !== "channel")
    throw new GatewayError(
      "bad-request",
      `${p.toJid} is not an IRC channel; chat with it instead of joining.`,
    );
  const nick = resourceOf(p.toFull);
  if (nick === "") throw new GatewayError("jid-malformed", "Choose a nickname to join an IRC channel.");
  checkNick(nick);
  const session = await deps.openSession(p.user, target.server, nick);
  const channel = target.channel;
  await deps.joining?.(p);
  // Membership is recorded before the connection is ready, so a leave arriving meanwhile cancels the join.
  session.addMember(channel, p.from, { roomJid: p.toJid, requestedNick: nick });
  await session.ready;
  if (!session.channels.get(channel)?.has(p.from)) return;
  // Already on IRC: show this resource the room now; else it is shown when NAMES arrives.
  if (session.isSynced(channel)) {
    const events = rosterEvents(session, channel, p.from);
    await deps.emit(session, deps.joinHistory ? [deps.joinHistory(session, events)] : events);
    return;
  }
  if (!session.requestJoin(channel)) return;
  await session.send("JOIN", channel);
  // RPL_CHANNELMODEIS tells whether the channel is moderated (+m: voiceless occupants are visitors).
  await session.send("MODE", channel);
  // A server that never answers the JOIN (no NAMES, no error) must not leave the client "joining" forever.
  setTimeout(() => joinTimedOut(deps, session, channel), deps.config.connectTimeoutSeconds * 1000).unref();
}

function joinTimedOut(deps: RoomDeps, session: IrcSession, channel: string): void {
  const members = session.channels.get(channel);
  if (!members || session.isSynced(channel)) return;
  const text = `${session.server} did not answer the join of ${channel} within ${deps.config.connectTimeoutSeconds} seconds.`;
  void deps.emit(
    session,
    [...members].map(([to, m]) => ({
      kind: "presence" as const,
      to,
      from: `${m.roomJid}/${m.requestedNick}`,
      type: "error" as const,
      error: { condition: "remote-server-timeout" as const, text },
    })),
  );
  session.forgetChannel(channel);
  deps.persist(session);
  deps.connections.release(session);
}

/**
 * The resource leaves the room. `gone`: it cannot be told (a message to it bounced: its session is gone), so
 * it only stops being an occupant; it gets the room again, with its history, when its client rejoins.
 */
export async function leaveRoom(
  deps: RoomDeps,
  p: Pick<OutboundPresence, "from" | "user" | "toJid" | "toFull">,
  opts: { gone?: boolean } = {},
): Promise<void> {
  const target = deps.target(p.toJid);
  const session = target.kind === "channel" ? deps.connections.get(p.user, target.server) : undefined;
  if (target.kind !== "channel" || !session) return;
  const joined = session.channels.get(target.channel)?.has(p.from) ?? false;
  if (opts.gone && !joined) return;
  const nick = joined ? session.nick : resourceOf(p.toFull);
  // XEP-0045 §7.14: the leaving occupant gets its own unavailable presence with 110.
  if (!opts.gone) await deps.emit(session, [leavePresence(p.from, p.toJid, nick, "", [STATUS.SELF])]);
  const wasRequested = session.isRequested(target.channel);
  if (!session.removeMember(target.channel, p.from)) return;
  if (wasRequested && session.registered && !session.closed) await session.send("PART", target.channel);
  deps.persist(session);
  deps.connections.release(session);
}

/** Errors a message to an occupant bounces with when the resource is not there (RFC 6121 §8.5.3.2.1). */
const GONE = new Set([
  "service-unavailable",
  "recipient-unavailable",
  "item-not-found",
  "gone",
  "remote-server-not-found",
  "remote-server-timeout",
]);

/**
 * A message to an occupant bounced with an error saying the resource is not there (its XMPP server
 * restarted, or the session ended without a word): it leaves the room, as a MUC service drops such a ghost,
 * so the room's lines stop going to nobody and the client's rejoin brings them back as history.
 */
export async function bounced(deps: RoomDeps, r: UserReport): Promise<void> {
  if (r.kind !== "error" || !GONE.has(r.condition ?? "")) return;
  await leaveRoom(deps, { from: r.from, user: r.user, toJid: r.toJid, toFull: r.toJid }, { gone: true });
}
