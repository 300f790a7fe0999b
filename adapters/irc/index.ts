/**
 * The IRC adapter: IRC channels as XEP-0045 rooms (`#chan%server@irc.example.org`) and IRC nicks as
 * contacts (`nick%server@…`), biboumi's addresses. No registration: the first join or message opens the
 * user's connection to that server (see connections.ts); inbound traffic is translated in inbound.ts.
 */
import { randomUUID } from "node:crypto";
import type {
  Adapter,
  AdapterContext,
  AddressQuery,
  DiscoItem,
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
import { ircConfigSchema, isServerAllowed, serverPolicy, type IrcConfig } from "./config.js";
import { IrcConnections, type IrcSession, type Member, type SessionSettings } from "./connections.js";
import { leavePresence, STATUS } from "./events.js";
import { ChannelCtcpClaims } from "./ctcp.js";
import { attachInbound, roomNotice, rosterEvents } from "./inbound.js";
import { sendMessage } from "./outbound.js";
import { JoinedStore, type JoinedRecord } from "./joined.js";
import { LEASE_RENEW_MS, LEASE_SECONDS, Leases } from "./lease.js";
import { mentionsOnly, serverSettings, settingsCommands } from "./settings.js";
import { StoreQueue } from "./store-queue.js";
import { SealError, SecretBox } from "../../src/store/sealed.js";
import { ChannelLists, roomInfo, serverInfo } from "./channel-list.js";
import { attachServerMessages } from "./server-messages.js";
import { nickFromText } from "./muc.js";

/** What a sealed password is bound to: copied to another user or field, it does not open. */
const sealContext = (user: string, key: string): string => `irc\n${user}\n${key}`;

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
  private joined: JoinedStore | undefined;
  private leases: Leases | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly connections: IrcConnections;
  readonly commands;
  private reconnects: { inc(): void } | undefined;
  private queue: StoreQueue | undefined;
  private channelLists: ChannelLists | undefined;
  /** Which connection answers a channel's CTCP query; shared with the other instances from start(). */
  private ctcpClaims = new ChannelCtcpClaims(undefined);

  constructor(
    private readonly config: AdapterBaseConfig & IrcConfig,
    /** Seals the users' IRC passwords in Redis; without it no password is stored. */
    private readonly box: SecretBox | undefined,
  ) {
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
      attach: (session) => {
        attachInbound(session, this.sink());
        // The MOTD and server notices, from the server JID (server-messages.ts).
        attachServerMessages(session, {
          log: this.context().log,
          emit: (s, events) => void this.emit(s, events),
          serverJid: (server) => this.serverJid(server),
        });
        void session.nickserv.then((outcome) => {
          if (outcome === "untrusted") this.nickservRefused(session);
        });
      },
      redialing: () => this.reconnects?.inc(),
      released: (user, server) => {
        if (!this.stopped) void this.leases?.release(user, server).catch(() => undefined);
      },
      outage: (session) =>
        void this.emit(
          session,
          this.toAll(session, (to, room) => [
            roomNotice(
              to,
              room,
              `The connection to the IRC server ${session.server} was lost; the gateway keeps trying to reconnect and you stay in the room meanwhile.`,
            ),
          ]),
        ),
      gaveUp: (session) => {
        void this.emit(
          session,
          this.toAll(session, (to, room) => [
            leavePresence(
              to,
              `${room}`,
              session.before?.nick ?? session.settings.nick,
              `The connection to the IRC server ${session.server} was lost and could not be restored.`,
              [STATUS.SELF, STATUS.SHUTDOWN],
            ),
          ]),
        );
        session.channels.clear();
        this.persist(session);
      },
    });
    const servers =
      config.servers.fixed === undefined ? (config.servers.allow ?? []) : [config.servers.fixed];
    this.commands = settingsCommands({
      settings: () => this.context().settings,
      servers,
      lineDelayFloor: (server) => serverPolicy(config, server).lineDelayMs,
      seal: (user, field, password) => {
        if (!this.box)
          throw new GatewayError(
            "feature-not-implemented",
            "This gateway does not store IRC passwords: its administrators have not set up the key that encrypts them.",
          );
        return this.box.seal(password, sealContext(user, field));
      },
      codec: this.codecOptions,
      changed: (user) => void this.refreshForwarding(user),
      disconnect: (user) => this.disconnectUser(user),
    });
  }

  /** One event list per resource in each channel of the session. */
  private toAll(session: IrcSession, make: (to: string, roomJid: string) => InboundEvent[]): InboundEvent[] {
    return [...session.channels.values()].flatMap((members) =>
      [...members].flatMap(([to, m]) => make(to, m.roomJid)),
    );
  }

  /** Records the session's channels in Redis, for a rejoin after a gateway restart; never rejects. */
  private persist(session: IrcSession): void {
    const joined = this.joined;
    if (!joined || (session.closed && session.channels.size > 0)) return;
    joined
      .save({ user: session.user, server: session.server, nick: session.nick, channels: session.channels })
      .catch((err: unknown) =>
        this.context().log.error({ err, jid: session.user }, "IRC channels not recorded"),
      );
  }

  /** The user's settings for a server, over the config's defaults. */
  private async settingsFor(user: string, server: string, nick: string): Promise<SessionSettings> {
    const all = await this.context().settings.get(user);
    const own = serverSettings(all, server);
    const base = this.connections.defaults(server, own.nick || nick);
    const saslPassword = await this.openSecret(user, server, "saslPassword", own.saslPassword);
    const nickservPassword = await this.openSecret(user, server, "nickservPassword", own.nickservPassword);
    return {
      ...base,
      ...(saslPassword ? { sasl: { account: base.nick, password: saslPassword } } : {}),
      ...(nickservPassword ? { nickservPassword } : {}),
      ...(own.port ? { port: Number(own.port) } : {}),
      ...(own.charset ? { fallbackCharset: own.charset } : {}),
      // The admins' pause is a floor: a user may slow their connection down, never speed it up (a value
      // stored before the floor was raised, or by an older release, cannot lower it either).
      lineDelayMs: Math.max(base.lineDelayMs, Number(own.lineDelayMs) || 0),
    };
  }

  /**
   * A stored password in clear: sealed ones opened with the configured keys; one stored in plain text (by
   * an older release) or sealed with an older key is sealed again with the current key on the way.
   */
  private async openSecret(user: string, server: string, field: string, stored: string): Promise<string> {
    if (stored === "") return "";
    const key = `${server}/${field}`;
    const context = sealContext(user, key);
    let plain = stored;
    if (SecretBox.isSealed(stored)) {
      try {
        if (!this.box) throw new SealError("no key is configured (adapters.irc.passwordKeysEnv)");
        plain = this.box.open(stored, context);
      } catch (err) {
        this.context().log.warn({ err, jid: user, server, field }, "stored IRC password cannot be opened");
        throw new GatewayError(
          "internal-server-error",
          `Your stored ${field === "saslPassword" ? "SASL" : "NickServ"} password for ${server} can no longer be read by the gateway; set it again in the IRC server settings.`,
        );
      }
    }
    if (this.box?.stale(stored)) {
      const all = { ...(await this.context().settings.get(user)) };
      if (all[key] === stored) {
        all[key] = this.box.seal(plain, context);
        await this.context().settings.put(user, all);
      }
    }
    return plain;
  }

  /** The JID of an IRC server (the bare domain for the fixed server, which has no address of its own). */
  private serverJid(server: string): string {
    const domain = this.context().domain;
    try {
      return `${this.codec.encode(formatIrcId({ kind: "server", server }))}@${domain}`;
    } catch {
      return domain;
    }
  }

  /** Tells the user their NickServ password was kept back: the nick is not held by the services. */
  private nickservRefused(session: IrcSession): void {
    const spec = session.settings.services;
    const ctx = this.context();
    ctx.log.warn(
      { jid: session.user, server: session.server },
      "NickServ is not the services: password not sent",
    );
    const where = [
      spec.server && `on a server matching ${spec.server}`,
      spec.host && `with a host matching ${spec.host}`,
    ]
      .filter(Boolean)
      .join(" and ");
    void this.emit(session, [
      {
        kind: "message",
        to: session.user,
        from: this.serverJid(session.server),
        id: `irc-${randomUUID()}`,
        type: "chat",
        body:
          `Your NickServ password was not sent: ${spec.nick} on ${session.server} is not the network's services ` +
          `(expected ${where}). If this network's services are elsewhere, the gateway's administrators can say so.`,
      },
    ]);
  }

  /** Opens (or reuses) the user's session on a server, with their settings. */
  private async openSession(user: string, server: string, nick: string): Promise<IrcSession> {
    const existing = this.connections.get(user, server);
    if (existing) return this.connections.open(user, server, existing.settings);
    const settings = await this.settingsFor(user, server, nick);
    if (this.leases && !(await this.leases.acquire(user, server)))
      throw new GatewayError(
        "resource-constraint",
        `Another instance of the gateway holds your connection to ${server}; try again in ${LEASE_SECONDS} seconds.`,
      );
    const session = this.connections.open(user, server, settings);
    session.mentionsOnly = mentionsOnly(await this.context().settings.get(user), server);
    return session;
  }

  private async refreshForwarding(user: string): Promise<void> {
    const all = await this.context().settings.get(user);
    for (const s of this.connections.all()) if (s.user === user) s.mentionsOnly = mentionsOnly(all, s.server);
  }

  private async disconnectUser(user: string): Promise<number> {
    const sessions = this.connections.all().filter((s) => s.user === user);
    for (const session of sessions) {
      await this.emit(
        session,
        this.toAll(session, (to, room) => [
          leavePresence(to, room, session.nick, "An administrator closed your IRC connection.", [
            STATUS.SELF,
            STATUS.KICKED,
          ]),
        ]),
      );
      session.channels.clear();
      this.connections.drop(session, "Disconnected by the gateway administrator");
      await this.joined?.remove(user, session.server);
    }
    for (const record of (await this.joined?.all()) ?? [])
      if (record.user === user) await this.joined?.remove(user, record.server);
    return sessions.length;
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
      persist: (session: IrcSession) => this.persist(session),
      claimChannelCtcp: (server: string, channel: string) => this.ctcpClaims.claim(server, channel),
      nickJid: (nick: string, server: string): string | null => {
        try {
          return `${this.codec.encode(formatIrcId({ kind: "nick", nick, server }))}@${ctx.domain}`;
        } catch {
          return null;
        }
      },
    };
  }

  /** Queues events for the user in order (see StoreQueue); never rejects. */
  private emit(session: IrcSession, events: InboundEvent[]): Promise<unknown> {
    if (!this.queue) throw new Error("the IRC adapter is not started");
    return this.queue.emit(session, events);
  }

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    this.joined = new JoinedStore(ctx.redis, ctx.key);
    this.reconnects = ctx.metrics.counter("reconnects_total", "Redials of lost IRC connections");
    this.queue = new StoreQueue(ctx);
    this.ctcpClaims = new ChannelCtcpClaims(
      async (server, channel, ms) =>
        (await ctx.redis.set(ctx.key("ctcp", server, channel), "1", "PX", ms, "NX")) === "OK",
    );
    ctx.metrics.gauge("connections_open", "IRC connections registered with their server", (g) =>
      g.set(this.connections.all().filter((s) => s.registered && !s.closed).length),
    );
    // The channel lists of the servers (channel-list.ts), for disco#items on a server JID.
    const listed = ctx.metrics.counter("channel_lists_total", "Channel lists answered, by source", [
      "source",
    ]);
    this.channelLists = new ChannelLists({
      redis: ctx.redis,
      key: ctx.key,
      log: ctx.log,
      cacheSeconds: this.config.channelListCacheSeconds,
      timeoutSeconds: this.config.channelListTimeoutSeconds,
      session: (user, server) => this.readySession(user, server),
      release: (session) => this.connections.release(session),
      counted: (source) => listed.inc({ source }),
    });
    this.leases = new Leases(ctx.redis, ctx.key, LEASE_SECONDS, ctx.instanceId);
    this.renewTimer = setInterval(() => void this.renewLeases(), LEASE_RENEW_MS);
    this.renewTimer.unref();
    // A gateway restart: every channel a user was in is joined again, the connections started staggered.
    for (const record of await this.joined.all()) await this.restoreOne(record);
  }

  /** Rejoins a user's recorded channels on one server, once this instance holds the connection's lease. */
  private async restoreOne(record: JoinedRecord): Promise<void> {
    const ctx = this.context();
    if (!isServerAllowed(this.config, record.server) || this.stopped) return;
    try {
      if (!(await this.leases?.acquire(record.user, record.server))) {
        // Another instance holds it (or a crashed one did): try again once that lease could have expired.
        setTimeout(() => void this.restoreOne(record), LEASE_SECONDS * 1000).unref();
        return;
      }
      const settings = await this.settingsFor(record.user, record.server, record.nick);
      this.connections.restore(record.user, record.server, settings, record.channels);
    } catch (err) {
      ctx.log.warn({ err, jid: record.user, server: record.server }, "IRC channels not rejoined");
    }
  }

  /** Renews the lease of every connection; one taken over by another instance is closed here. */
  private async renewLeases(): Promise<void> {
    for (const session of this.connections.all()) {
      const held = await this.leases?.acquire(session.user, session.server).catch(() => true);
      if (held === false) {
        this.context().log.warn({ jid: session.user, server: session.server }, "IRC connection taken over");
        this.connections.drop(session, "Connection moved to another gateway instance");
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewTimer);
    const sessions = this.connections.all();
    this.connections.closeAll("Gateway shutting down");
    // Released at once, so another instance (or this one restarted) takes the users over without waiting.
    const leases = this.leases;
    if (leases)
      await Promise.all(sessions.map((s) => leases.release(s.user, s.server).catch(() => undefined)));
  }

  // ---- The server JID: its channel list (channel-list.ts) and what it is (disco#info). ----

  /** The IRC server a JID stands for (the bare domain for the fixed server), or undefined. */
  private serverOf(jid: string): string | undefined {
    if (jid === this.context().domain) return this.config.servers.fixed;
    const target = this.target(jid);
    return target.kind === "server" ? target.server : undefined;
  }

  async discoItems(q: AddressQuery): Promise<DiscoItem[] | null> {
    const server = this.serverOf(q.toJid);
    if (server === undefined || !this.channelLists) return null;
    const domain = this.context().domain;
    return this.channelLists.items(q.user, server, (channel) => {
      try {
        return `${this.codec.encode(formatIrcId({ kind: "channel", channel: channel.toLowerCase(), server }))}@${domain}`;
      } catch {
        return null;
      }
    });
  }

  discoInfo(q: AddressQuery): ReturnType<typeof serverInfo> | null {
    try {
      if (q.toJid === this.context().domain) return null; // the gateway itself: the core answers
      const target = this.target(q.toJid);
      if (target.kind === "server") return serverInfo(target.server);
      return target.kind === "channel" ? roomInfo(target.channel, target.server) : null;
    } catch {
      return null; // not an address of this gateway's servers: the core answers for it
    }
  }

  /** The user's connection to a server, registered (opened with their settings as a join would). */
  private async readySession(user: string, server: string): Promise<IrcSession> {
    const registration = await this.context().registrations.get(user);
    const session = await this.openSession(user, server, registration?.nick ?? nickFromText(localOf(user)));
    try {
      await session.ready;
    } catch (err) {
      this.connections.release(session);
      throw err;
    }
    return session;
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
    const session = await this.openSession(p.user, target.server, nick);
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
    await session.send("JOIN", channel);
    // RPL_CHANNELMODEIS tells whether the channel is moderated (+m: voiceless occupants are visitors).
    await session.send("MODE", channel);
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
    this.persist(session);
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
    if (wasRequested && session.registered && !session.closed) await session.send("PART", target.channel);
    this.persist(session);
    this.connections.release(session);
  }

  send(m: OutboundMessage): Promise<SendOutcome> {
    return sendMessage(
      {
        connections: this.connections,
        target: (jid) => this.target(jid),
        emit: (session, events) => this.emit(session, events),
        openSession: (user, server, nick) => this.openSession(user, server, nick),
      },
      m,
    );
  }
}

export const ircAdapter = defineAdapter({
  configSchema: ircConfigSchema,
  create: (config, secret) =>
    new IrcAdapter(
      config,
      config.passwordKeysEnv === undefined
        ? undefined
        : new SecretBox(
            secret(config.passwordKeysEnv),
            `adapters.irc.passwordKeysEnv (${config.passwordKeysEnv})`,
          ),
    ),
});
