/**
 * The IRC adapter: IRC channels as XEP-0045 rooms (`#chan%server@irc.example.org`) and IRC nicks as
 * contacts (`nick%server@…`), biboumi's addresses. No registration: the first join or message opens the
 * user's connection to that server. Where things live:
 * - connections.ts: the life of every connection (open, lease, grace, redial, restore, close);
 * - session.ts: one connection's state; link.ts + message.ts: its line layer;
 * - handlers.ts: server lines → events (IRC → XMPP); rooms.ts and outbound.ts: XMPP → IRC;
 * - store-queue.ts: events on their way to the store, in order, with backpressure;
 * - mam.ts (archive.ts, history.ts): channel history: the archive the sessions' channel lines go to,
 *   XEP-0313 on room JIDs, history on join, the opt-out command;
 * - server-disco.ts (channel-list.ts): disco on the server JID (its channel list) and on room JIDs.
 */
import { randomUUID } from "node:crypto";
import type {
  AdhocCommand,
  Adapter,
  AdapterContext,
  AddressQuery,
  DiscoItem,
  EntityInfo,
  InboundEvent,
  OutboundMessage,
  OutboundPresence,
  SendOutcome,
  UserReport,
} from "../../src/adapter.js";
import { defineAdapter } from "../../src/adapter.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { SecretBox } from "../../src/store/sealed.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { NS } from "../../src/xmpp/ns.js";
import {
  createIrcCodec,
  formatIrcId,
  parseIrcLocalpart,
  type IrcCodecOptions,
  type IrcTarget,
} from "./codec.js";
import { ircConfigSchema, isServerAllowed, serverPolicy, type IrcConfig } from "./config.js";
import { IrcConnections, type IrcSession } from "./connections.js";
import { ChannelCtcpClaims } from "./ctcp.js";
import { leavePresence, STATUS } from "./events.js";
import { roomNotice } from "./handlers.js";
import { JoinedStore, type JoinedRecord } from "./joined.js";
import { LEASE_SECONDS, Leases } from "./lease.js";
import { sendMessage } from "./outbound.js";
import { bounced, joinRoom, leaveRoom, type RoomDeps } from "./rooms.js";
import { mentionsOnly, settingsCommands } from "./settings.js";
import { untrustedNotice } from "./services.js";
import { IrcArchive } from "./mam.js";
import { StoreQueue, type Emitted } from "./store-queue.js";
import { UserSettings } from "./user-settings.js";
import { ServerDisco } from "./server-disco.js";
import { nickFromText } from "./muc.js";

const localOf = (jid: string): string => jid.slice(0, jid.lastIndexOf("@"));
class IrcAdapter implements Adapter {
  readonly gatewayType = "irc";
  readonly name = "IRC";
  readonly requiresRegistration = false;
  readonly features = [NS.MUC];
  readonly codec;
  readonly prompt;
  readonly connections: IrcConnections;
  readonly commands: readonly AdhocCommand[];
  /** Channel history: archive, XEP-0313, join history, room disco, opt-out command (mam.ts). */
  readonly archive: IrcArchive;
  private readonly codecOptions: IrcCodecOptions;
  private readonly userSettings: UserSettings;
  private ctx: AdapterContext | undefined;
  private joined: JoinedStore | undefined;
  /** This instance's hold on its users' IRC connections (set at start). */
  private leases: Leases | undefined;
  private reconnects: { inc(): void } | undefined;
  private queue: StoreQueue | undefined;
  /** Disco on the server JID (its channel list) and on room JIDs (server-disco.ts). */
  private readonly disco: ServerDisco;
  /** Which connection answers a channel's CTCP query; shared with the other instances from start(). */
  private ctcpClaims = new ChannelCtcpClaims(undefined);

  constructor(
    private readonly config: AdapterBaseConfig & IrcConfig,
    box: SecretBox | undefined,
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
      deliver: (session, events) => void this.emit(session, events),
      // Channel history (mam.ts): channel lines archived once, joins with their history.
      archive: (session, channel, line) =>
        this.archive.line(session, channel, line) ?? Promise.resolve(undefined),
      joinHistory: (session, events) => this.archive.withHistory(session, events),
      channelsChanged: (session) => this.persist(session),
      claimChannelCtcp: (server, channel) => this.ctcpClaims.claim(server, channel),
      nickJid: (nick, server) => this.jidOf(formatIrcId({ kind: "nick", nick, server })),
      // The MOTD and server notices come from the server JID (server-messages.ts).
      serverJid: (server) => this.serverJid(server),
      opened: (session) =>
        void session.nickserv.then((outcome) => {
          if (outcome === "untrusted") this.nickservRefused(session);
        }),
      redialing: () => this.reconnects?.inc(),
      outage: (session) =>
        void this.emit(
          session,
          this.toAll(session, (to, room) => [
            roomNotice(
              session,
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
              room,
              session.before?.nick ?? session.settings.nick,
              `The connection to the IRC server ${session.server} was lost and could not be restored.`,
              [STATUS.SELF, STATUS.SHUTDOWN],
            ),
          ]),
        );
        session.forgetAll();
        this.persist(session);
      },
    });
    this.userSettings = new UserSettings(() => this.context(), this.connections, box);
    const servers =
      config.servers.fixed === undefined ? (config.servers.allow ?? []) : [config.servers.fixed];
    this.commands = settingsCommands({
      settings: () => this.context().settings,
      servers,
      lineDelayFloor: (server) => serverPolicy(config, server).lineDelayMs,
      seal: (user, field, password) => this.userSettings.seal(user, field, password),
      codec: this.codecOptions,
      changed: (user, all) => this.applyForwarding(user, all),
      disconnect: (user) => this.disconnectUser(user),
    });
    // Channel history (mam.ts): archive, MAM, join history, room disco; its opt-out command.
    this.archive = new IrcArchive({
      config,
      connections: this.connections,
      target: (jid) => this.target(jid),
    });
    this.commands = [...this.commands, ...this.archive.commands];
    this.disco = new ServerDisco({
      config,
      codec: this.codec,
      target: (jid) => this.target(jid),
      describeRoom: (jid) => this.archive.describe(jid),
      session: (user, server) => this.readySession(user, server),
      release: (session) => this.connections.release(session),
    });
  }

  private context(): AdapterContext {
    if (!this.ctx) throw new Error("IRC adapter not started");
    return this.ctx;
  }

  /** The JID of an IRC id on the gateway's domain, or null when it cannot be one. */
  private jidOf(id: string): string | null {
    try {
      return `${this.codec.encode(id)}@${this.context().domain}`;
    } catch {
      return null;
    }
  }

  /** The JID of an IRC server (the bare domain for the fixed server, which has no address of its own). */
  private serverJid(server: string): string {
    return this.jidOf(formatIrcId({ kind: "server", server })) ?? this.context().domain;
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
      .save({
        user: session.user,
        server: session.server,
        nick: session.nick,
        channels: new Map([...session.channels].map(([c, m]) => [c, new Map(m)])),
      })
      .catch((err: unknown) =>
        this.context().log.error({ err, jid: session.user }, "IRC channels not recorded"),
      );
  }

  /** Queues events for the user in order (see StoreQueue); never rejects. */
  private emit(session: IrcSession, events: readonly Emitted[]): Promise<unknown> {
    if (!this.queue) throw new Error("the IRC adapter is not started");
    return this.queue.emit(session, events);
  }

  /** Tells the user their NickServ password was kept back: the nick is not held by the services. */
  private nickservRefused(session: IrcSession): void {
    this.context().log.warn(
      { jid: session.user, server: session.server },
      "NickServ is not the services: password not sent",
    );
    void this.emit(session, [
      {
        kind: "message",
        to: session.user,
        from: this.serverJid(session.server),
        id: `irc-${randomUUID()}`,
        type: "chat",
        body: untrustedNotice(session.settings.services, session.server),
      },
    ]);
  }

  /** Opens (or reuses) the user's session on a server, with their settings. */
  private openSession(user: string, server: string, nick: string): Promise<IrcSession> {
    return this.connections.connect(user, server, () => this.userSettings.forServer(user, server, nick));
  }

  private applyForwarding(user: string, all: Readonly<Record<string, string>>): void {
    for (const s of this.connections.all())
      if (s.user === user) s.setMentionsOnly(mentionsOnly(all, s.server));
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
      session.forgetAll();
      this.connections.drop(session, "Disconnected by the gateway administrator");
      await this.joined?.remove(user, session.server);
    }
    for (const record of (await this.joined?.all()) ?? [])
      if (record.user === user) await this.joined?.remove(user, record.server);
    return sessions.length;
  }

  async start(ctx: AdapterContext): Promise<void> {
    this.ctx = ctx;
    this.joined = new JoinedStore(ctx.redis, ctx.key);
    this.reconnects = ctx.metrics.counter("reconnects_total", "Redials of lost IRC connections");
    this.queue = new StoreQueue(ctx);
    this.archive.start(ctx);
    this.ctcpClaims = new ChannelCtcpClaims(
      async (server, channel, ms) =>
        (await ctx.redis.set(ctx.key("ctcp", server, channel), "1", "PX", ms, "NX")) === "OK",
    );
    ctx.metrics.gauge("connections_open", "IRC connections registered with their server", (g) =>
      g.set(this.connections.all().filter((s) => s.registered && !s.closed).length),
    );
    this.disco.start(ctx);
    this.leases = new Leases(ctx.redis, ctx.key, LEASE_SECONDS, ctx.instanceId);
    this.connections.start(this.leases);
    // A gateway restart: every channel a user was in is joined again, the connections started staggered.
    for (const record of await this.joined.all()) await this.restoreOne(record);
  }

  /** A dead instance's users are served here now: their IRC connections and rooms are opened here at once. */
  async instanceGone(instanceId: string): Promise<void> {
    const freed = await this.leases?.releaseHeldBy(instanceId);
    if (!freed?.length) return;
    const held = new Set(freed.map((f) => `${f.user} ${f.server}`));
    for (const record of (await this.joined?.all()) ?? [])
      if (held.has(`${record.user} ${record.server}`)) await this.restoreOne(record);
    this.context().log.info(
      { instanceId, connections: freed.length },
      "took over a dead instance's IRC connections",
    );
  }

  private async restoreOne(record: JoinedRecord): Promise<void> {
    if (!isServerAllowed(this.config, record.server)) return;
    const settings = () => this.userSettings.forServer(record.user, record.server, record.nick);
    try {
      await this.connections.restore(record.user, record.server, settings, record.channels);
    } catch (err) {
      this.context().log.warn({ err, jid: record.user, server: record.server }, "IRC channels not rejoined");
    }
  }

  async stop(): Promise<void> {
    await this.connections.stop("Gateway shutting down");
  }

  /** The server JID's channel list (server-disco.ts); null: the core answers. */
  discoItems(q: AddressQuery): Promise<DiscoItem[] | null> {
    return this.disco.items(q);
  }

  /** An IRC server or a room (archived or not) (server-disco.ts); null: the core answers. */
  discoInfo(q: AddressQuery): Promise<EntityInfo | null> {
    return this.disco.info(q);
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

  private rooms(): RoomDeps {
    return {
      config: this.config,
      connections: this.connections,
      target: (jid) => this.target(jid),
      emit: (session, events) => this.emit(session, events),
      persist: (session) => this.persist(session),
      openSession: (user, server, nick) => this.openSession(user, server, nick),
      // Channel history (mam.ts): this user may read the archive; the history is sent once in.
      joining: (p) => this.archive.joining(p.from, p.user, p.toJid, p.history),
      joinHistory: (session, events) => this.archive.withHistory(session, events),
    };
  }

  /** Receipts and bounces: a bounce from an occupant may mean it is gone from the room (rooms.ts). */
  report(r: UserReport): Promise<void> {
    return bounced(this.rooms(), r);
  }

  /** Presences to room JIDs: the one place they are routed (joins, leaves). */
  async presence(p: OutboundPresence): Promise<void> {
    if (p.type === "available" && !p.muc) return; // a status change in a room: IRC has no per-channel status
    if (p.type === "unavailable") return leaveRoom(this.rooms(), p);
    // The join waits for the IRC server (up to connectTimeoutSeconds); errors come back as presence errors.
    joinRoom(this.rooms(), p).catch((err: unknown) => {
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

  /** Messages to room, nick and server JIDs: the one place they are routed (see outbound.ts). */
  send(m: OutboundMessage): Promise<SendOutcome> {
    return sendMessage(
      {
        ...this.rooms(),
        // Channel history (mam.ts): the user's own lines when the server does not echo them.
        archiveOwn: (session, channel, lines) => this.archive.ownLines(session, channel, lines),
        emitLater: (session, events) => void this.emit(session, [events]),
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
