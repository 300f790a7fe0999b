/**
 * The IRC adapter: IRC channels as XEP-0045 rooms (`#chan%server@irc.example.org`) and IRC nicks as
 * contacts (`nick%server@…`), biboumi's addresses. No registration: the first join or message opens the
 * user's connection to that server (see connections.ts); inbound traffic is translated in inbound.ts.
 */
import type {
  Adapter,
  AdapterContext,
  InboundEvent,
  OutboundMessage,
  OutboundPresence,
  SendOutcome,
} from "../../src/adapter.js";
import { defineAdapter } from "../../src/adapter.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { NS } from "../../src/xmpp/ns.js";
import {
  checkNick,
  createIrcCodec,
  formatIrcId,
  parseIrcLocalpart,
  type IrcCodecOptions,
  type IrcTarget,
} from "./codec.js";
import { ircConfigSchema, isServerAllowed, type IrcConfig } from "./config.js";
import { IrcConnections, type IrcSession, type Member } from "./connections.js";
import { leavePresence, STATUS } from "./events.js";
import { toIrc } from "./format.js";
import { attachInbound, rosterEvents } from "./inbound.js";
import { nickFromText } from "./muc.js";
import { toIrcLines } from "./split.js";

const localOf = (jid: string): string => jid.slice(0, jid.lastIndexOf("@"));
const resourceOf = (jid: string): string => {
  const slash = jid.indexOf("/");
  return slash < 0 ? "" : jid.slice(slash + 1);
};

class IrcAdapter implements Adapter {
  readonly gatewayType = "irc";
  readonly name = "IRC";
  readonly requiresRegistration = false;
  readonly features = [NS.MUC];
  readonly codec;
  readonly prompt;
  private readonly codecOptions: IrcCodecOptions;
  private ctx: AdapterContext | undefined;
  readonly connections: IrcConnections;

  constructor(private readonly config: AdapterBaseConfig & IrcConfig) {
    this.codecOptions = config.servers.fixed === undefined ? {} : { fixedServer: config.servers.fixed };
    this.codec = createIrcCodec(this.codecOptions);
    const example = config.servers.fixed ?? config.servers.allow?.[0] ?? "irc.libera.chat";
    this.prompt = {
      desc: "Enter an IRC channel or nick with its server, e.g. #chat%server or alice%server.",
      prompt: "IRC channel or nick",
      example: `#chat%${example}`,
    };
    this.connections = new IrcConnections({
      config,
      log: () => this.context().log,
      attach: (session) => attachInbound(session, this.sink()),
    });
  }

  private context(): AdapterContext {
    if (!this.ctx) throw new Error("IRC adapter not started");
    return this.ctx;
  }

  private sink() {
    const ctx = this.context();
    return {
      log: ctx.log,
      connections: this.connections,
      emit: (session: IrcSession, events: InboundEvent[]) => void this.emit(session, events),
      nickJid: (nick: string, server: string): string | null => {
        try {
          return `${this.codec.encode(formatIrcId({ kind: "nick", nick, server }))}@${ctx.domain}`;
        } catch {
          return null;
        }
      },
    };
  }

  /** Queues events for the user after everything queued before on this session; never rejects. */
  private emit(session: IrcSession, events: InboundEvent[]): Promise<unknown> {
    const ctx = this.context();
    session.chain = session.chain.then(async () => {
      for (const event of events)
        await ctx
          .deliver(event)
          .catch((err: unknown) => ctx.log.error({ err, jid: session.user }, "IRC event lost"));
    });
    return session.chain;
  }

  start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.connections.closeAll("Gateway shutting down");
    return Promise.resolve();
  }

  private target(jid: string): IrcTarget {
    const target = parseIrcLocalpart(localOf(jid), this.codecOptions);
    if (!isServerAllowed(this.config, target.server))
      throw new GatewayError(
        "forbidden",
        `This gateway does not connect to the IRC server ${target.server}.`,
      );
    return target;
  }

  async presence(p: OutboundPresence): Promise<void> {
    if (p.type === "available" && !p.muc) return; // a status change in a room: IRC has no per-channel status
    if (p.type === "unavailable") return this.leave(p);
    // The join waits for the IRC server (up to connectTimeoutSeconds); errors come back as presence errors.
    this.join(p).catch((err: unknown) => {
      const error =
        err instanceof GatewayError
          ? { condition: err.condition, text: err.message }
          : {
              condition: "internal-server-error" as const,
              text: "The IRC gateway failed to join this channel.",
            };
      if (!(err instanceof GatewayError)) this.context().log.error({ err, jid: p.user }, "IRC join failed");
      this.context()
        .deliver({ kind: "presence", to: p.from, from: p.toFull, type: "error", error })
        .catch((e: unknown) => this.context().log.error({ err: e }, "IRC join error lost"));
    });
    return Promise.resolve();
  }

  private async join(p: OutboundPresence): Promise<void> {
    const target = this.target(p.toJid);
    if (target.kind !== "channel")
      throw new GatewayError(
        "bad-request",
        `${p.toJid} is not an IRC channel; chat with it instead of joining.`,
      );
    const nick = resourceOf(p.toFull);
    if (nick === "") throw new GatewayError("jid-malformed", "Choose a nickname to join an IRC channel.");
    checkNick(nick);
    const session = this.connections.open(p.user, target.server, nick);
    const channel = target.channel;
    // Membership is recorded before the connection is ready, so a leave arriving meanwhile cancels the join.
    const members = session.channels.get(channel) ?? new Map<string, Member>();
    members.set(p.from, { roomJid: p.toJid, requestedNick: nick });
    session.channels.set(channel, members);
    await session.ready;
    if (!session.channels.get(channel)?.has(p.from)) return;
    // Already on IRC: show this resource the room now; else it is shown when NAMES arrives.
    if (session.synced.has(channel)) {
      await this.emit(session, rosterEvents(session, channel, p.from));
      return;
    }
    if (session.requested.has(channel)) return;
    session.requested.add(channel);
    await session.client.send("JOIN", channel);
    // A server that never answers the JOIN (no NAMES, no error) must not leave the client "joining" forever.
    setTimeout(() => this.joinTimedOut(session, channel), this.config.connectTimeoutSeconds * 1000).unref();
  }

  private joinTimedOut(session: IrcSession, channel: string): void {
    const members = session.channels.get(channel);
    if (!members || session.synced.has(channel)) return;
    const text = `${session.server} did not answer the join of ${channel} within ${this.config.connectTimeoutSeconds} seconds.`;
    void this.emit(
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
    this.connections.release(session);
  }

  private async leave(p: OutboundPresence): Promise<void> {
    const target = this.target(p.toJid);
    const session = target.kind === "channel" ? this.connections.get(p.user, target.server) : undefined;
    if (target.kind !== "channel" || !session) return;
    const members = session.channels.get(target.channel);
    const nick = members?.get(p.from) ? session.nick : resourceOf(p.toFull);
    // XEP-0045 §7.14: the leaving occupant gets its own unavailable presence with 110.
    await this.emit(session, [leavePresence(p.from, p.toJid, nick, "", [STATUS.SELF])]);
    if (!members?.delete(p.from) || members.size > 0) return;
    const wasRequested = session.requested.has(target.channel);
    session.forgetChannel(target.channel);
    if (wasRequested && session.registered && !session.closed)
      await session.client.send("PART", target.channel);
    this.connections.release(session);
  }

  async send(m: OutboundMessage): Promise<SendOutcome> {
    const target = this.target(m.toJid);
    if (target.kind === "server")
      throw new GatewayError("feature-not-implemented", "Messages to an IRC server are not supported yet.");
    if (m.type === "groupchat") {
      if (target.kind !== "channel")
        throw new GatewayError("bad-request", `${m.toJid} is an IRC nick, not a room.`);
      const session = this.connections.get(m.user, target.server);
      const member = session?.channels.get(target.channel)?.get(m.from);
      if (!session || !member || !session.synced.has(target.channel))
        throw new GatewayError("not-acceptable", `Join ${m.toJid} before sending messages to it.`);
      await this.say(session, target.channel, m.body);
      // XEP-0045 §7.2.2 / §7.4: the message comes back to every joined resource with the sender's id.
      const members = [...(session.channels.get(target.channel) ?? [])];
      await this.emit(
        session,
        members.map(([to, mem]) => ({
          kind: "message" as const,
          to,
          from: `${mem.roomJid}/${session.nick}`,
          id: m.id,
          type: "groupchat" as const,
          body: m.body,
        })),
      );
      return { status: "accepted" };
    }
    // XEP-0045 §7.5: a private message through the room goes to the occupant's nick.
    let nick: string;
    let session: IrcSession;
    if (target.kind === "channel") {
      nick = resourceOf(m.toFull);
      const existing = this.connections.get(m.user, target.server);
      if (nick === "" || !existing?.channels.get(target.channel)?.has(m.from))
        throw new GatewayError("not-acceptable", `Join ${m.toJid} before writing to its occupants.`);
      checkNick(nick);
      session = existing;
    } else {
      nick = target.nick;
      const own = m.registration?.nick ?? nickFromText(localOf(m.user));
      session = this.connections.open(m.user, target.server, own);
      await session.ready;
    }
    await this.say(session, nick, m.body);
    this.connections.release(session);
    return { status: "accepted" };
  }

  /** Sends a body as PRIVMSG lines: /me as CTCP ACTION, split to fit, CR/LF/NUL never sent. */
  private async say(session: IrcSession, target: string, body: string): Promise<void> {
    const lines = toIrcLines(toIrc(body), { target, prefixBytes: session.prefixBytes() });
    try {
      for (const line of lines) await session.client.send("PRIVMSG", target, line);
    } catch (err) {
      throw new GatewayError("recipient-unavailable", `The connection to ${session.server} is closed.`, {
        cause: err,
      });
    }
  }
}

export const ircAdapter = defineAdapter({
  configSchema: ircConfigSchema,
  create: (config) => new IrcAdapter(config),
});
