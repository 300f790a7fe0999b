/**
 * XMPP → IRC messages: room messages (reflected with the sender's id, after the server's echo when it
 * offers echo-message), subject changes as TOPIC, private messages through the room or to nick%server,
 * each body as PRIVMSG lines split to fit, /me as CTCP ACTION, CR/LF/NUL never sent.
 */
import type { InboundEvent, OutboundMessage, SendOutcome } from "../../src/adapter.js";
import { MaybeSent, SendRefused } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { checkNick, type IrcTarget } from "./codec.js";
import { consoleDeps, runConsoleCommand } from "./console.js";
import type { IrcConnections, IrcSession } from "./connections.js";
import { toIrc } from "./format.js";
import { nickFromText } from "./muc.js";
import { toIrcLines } from "./split.js";
import { withArchiveId } from "./archive.js";

/** What sending needs from the adapter. */
export interface OutboundDeps {
  readonly connections: IrcConnections;
  /** The IRC target of a JID on the gateway's domain (throws for servers not allowed). */
  target(jid: string): IrcTarget;
  /** Queues events for the user, in order. */
  emit(session: IrcSession, events: InboundEvent[]): Promise<unknown>;
  /** The user's session on a server, opened with their settings when needed. */
  openSession(user: string, server: string, nick: string): Promise<IrcSession>;
  /**
   * Channel history (mam.ts): archives the user's own channel lines as IRC saw them, when the server does
   * not echo them (with echo-message the session archives the echo); the first line's archive id.
   */
  archiveOwn?(session: IrcSession, channel: string, lines: string[]): Promise<string | undefined> | undefined;
  /** Queues events still being made (the reflection waiting for its archive id), in order. */
  emitLater?(session: IrcSession, events: Promise<InboundEvent[]>): void;
}

const localOf = (jid: string): string => jid.slice(0, jid.lastIndexOf("@"));
const resourceOf = (jid: string): string => {
  const slash = jid.indexOf("/");
  return slash < 0 ? "" : jid.slice(slash + 1);
};

export async function sendMessage(deps: OutboundDeps, m: OutboundMessage): Promise<SendOutcome> {
  const target = deps.target(m.toJid);
  // The server console (console.ts): a message to the server JID is an IRC command.
  if (target.kind === "server") return runConsoleCommand(consoleDeps(deps), m, target.server);
  if (m.type === "groupchat") {
    if (target.kind !== "channel")
      throw new GatewayError("bad-request", `${m.toJid} is an IRC nick, not a room.`);
    const session = deps.connections.get(m.user, target.server);
    const member = session?.channels.get(target.channel)?.get(m.from);
    if (session && member && session.restoring && !session.isSynced(target.channel))
      throw new GatewayError(
        "recipient-unavailable",
        `The connection to ${target.server} is being restored; send it again in a moment.`,
      );
    if (!session || !member || !session.isSynced(target.channel))
      throw new GatewayError("not-acceptable", `Join ${m.toJid} before sending messages to it.`);
    // XEP-0045 §8.1: a message with a subject (and no body) changes the subject: IRC TOPIC.
    if (m.subject !== undefined && m.body === "") {
      const topic =
        toIrcLines(m.subject.replace(/[\r\n\0]+/g, " "), {
          target: target.channel,
          prefixBytes: session.prefixBytes(),
        })[0] ?? "";
      // The server's answer decides: its TOPIC echo, or a refusal (482 not an operator…) for the sender.
      const { answer, cancel } = session.expectCommand(target.channel, "TOPIC");
      try {
        await write(session, m, "TOPIC", target.channel, [topic]);
      } catch (err) {
        cancel();
        throw err;
      }
      const refusal = await answer;
      if (refusal)
        throw new SendRefused(
          refusal.condition,
          `${target.server} refused the subject change in ${target.channel}: ${refusal.serverText}`,
        );
      return { status: "accepted" };
    }
    // XEP-0045 §7.2.2 / §7.4: the message comes back to every joined resource with the sender's id;
    // with echo-message only once the server echoed it, i.e. accepted it.
    const reflect = (archived?: Promise<string | undefined>) => {
      const events = [...(session.channels.get(target.channel) ?? [])].map(([to, mem]) => ({
        kind: "message" as const,
        to,
        from: `${mem.roomJid}/${session.nick}`,
        id: m.id,
        type: "groupchat" as const,
        body: m.body,
      }));
      // Channel history: a one-line message's reflection carries its archive id, as the others' copies do.
      if (archived && deps.emitLater) deps.emitLater(session, withArchiveId(events, archived));
      else void deps.emit(session, events);
    };
    const echoes = session.hasCap("echo-message");
    let archived: Promise<string | undefined> | undefined;
    const lines = await say(
      session,
      m,
      target.channel,
      (count) => {
        if (echoes)
          session.awaitEcho({
            channel: target.channel,
            lines: count,
            reflect,
            refuse: (text) =>
              void deps.emit(session, [
                { kind: "error", to: m.from, from: m.toJid, id: m.id, condition: "forbidden", text },
              ]),
          });
      },
      (sent) => {
        if (!echoes) archived = deps.archiveOwn?.(session, target.channel, sent);
      },
    );
    if (!echoes && lines > 0) reflect(lines === 1 ? archived : undefined);
    return { status: "accepted" };
  }
  // XEP-0045 §7.5: a private message through the room goes to the occupant's nick.
  let nick: string;
  let session: IrcSession;
  if (target.kind === "channel") {
    nick = resourceOf(m.toFull);
    const existing = deps.connections.get(m.user, target.server);
    if (nick === "" || !existing?.channels.get(target.channel)?.has(m.from))
      throw new GatewayError("not-acceptable", `Join ${m.toJid} before writing to its occupants.`);
    checkNick(nick);
    session = existing;
  } else {
    nick = target.nick;
    const own = m.registration?.nick ?? nickFromText(localOf(m.user));
    session = await deps.openSession(m.user, target.server, own);
    await session.ready;
  }
  try {
    await say(session, m, nick);
  } finally {
    // Also after a refusal (e.g. a full flood-control queue): the connection still closes after grace.
    deps.connections.release(session);
  }
  return { status: "accepted" };
}

/** Sends a body as PRIVMSG lines: /me as CTCP ACTION, split to fit, CR/LF/NUL never sent. */
async function say(
  session: IrcSession,
  m: OutboundMessage,
  target: string,
  before?: (lines: number) => void,
  /** The lines once written (channel history). */
  after?: (lines: string[]) => void,
): Promise<number> {
  const lines = toIrcLines(toIrc(m.body), { target, prefixBytes: session.prefixBytes() });
  // A full flood-control queue refuses the whole message before any of it is queued.
  session.checkRoom(lines.length);
  // Registered before the first line leaves, so an echo can never arrive ahead of it.
  before?.(lines.length);
  await write(session, m, "PRIVMSG", target, lines);
  after?.(lines);
  return lines.length;
}

/**
 * Writes the lines of one message, handing it off right before the first leaves flood control: until then
 * it waits in the connection's queue and a crash leaves it unsent. A closed connection before the first
 * line is a refusal (nothing left); after it, the message was sent in part.
 */
async function write(
  session: IrcSession,
  m: OutboundMessage,
  command: string,
  target: string,
  lines: string[],
): Promise<void> {
  const progress = { written: 0 };
  let storeFailed = false;
  const handOff = () =>
    m.handOff().catch((err: unknown) => {
      storeFailed = true;
      throw err;
    });
  try {
    await session.sendLines(command, target, lines, { handOff, progress });
  } catch (err) {
    if (storeFailed || err instanceof GatewayError) throw err;
    const closed = `The connection to ${session.server} is closed.`;
    if (progress.written === 0) throw new SendRefused("recipient-unavailable", closed, { cause: err });
    throw new MaybeSent(
      "recipient-unavailable",
      `${closed} ${progress.written} of ${lines.length} lines of this message were sent; the rest was not, and ` +
        "it will not be sent again.",
      { cause: err },
    );
  }
}
