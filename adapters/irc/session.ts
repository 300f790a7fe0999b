/**
 * One IRC connection of one user to one server, as a state machine that owns its state: the line layer
 * (link.ts), the channels the user's resources are in (memberships.ts), IRC's side of those channels
 * (roster.ts), flood control, echoes, pending commands, CTCP answers (ctcp.ts) and NickServ identification
 * (services.ts), each a collaborator only this class holds. Server lines go through the handler table (handlers.ts) and only
 * this class applies what they decide; what the user should see goes out through SessionOutput, one way.
 * Opening, redialing and closing connections is IrcConnections' business (connections.ts).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../src/log.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { withArchiveId } from "./archive.js";
import { linkOptions, type IrcConfig } from "./config.js";
import { CtcpAnswers } from "./ctcp.js";
import { Echoes, type PendingEcho } from "./echoes.js";
import { handle, type Change, type Member, type SessionState } from "./handlers.js";
import { IrcLink } from "./link.js";
import { Memberships } from "./memberships.js";
import type { IrcMessage } from "./message.js";
import { PendingCommands, type Refusal } from "./pending.js";
import { Roster, type ChannelView, type Support } from "./roster.js";
import { identifyWhenReady } from "./services.js";
import { ServerMessages } from "./server-messages.js";
import { SessionLines } from "./session-lines.js";
import type { Carried, ReplyListener, SessionOutput, SessionSettings } from "./session-types.js";

export type { Member } from "./handlers.js";
export type { Carried, ReplyListener, SessionOutput, SessionSettings } from "./session-types.js";
export type { PendingEcho } from "./echoes.js";

/** QUIT text the IRC side sees when the gateway closes a connection. */
export const QUIT_MESSAGE = "Left all channels";

export class IrcSession implements SessionState {
  /** Resolves once the server registered the nick (RPL_WELCOME); rejects with a GatewayError. */
  readonly ready: Promise<void>;
  /** The NickServ password: sent to the services, refused (NickServ is not the services), or none to send. */
  readonly nickserv: Promise<"sent" | "untrusted" | "none">;
  /** A redial or a restart: another nick is taken when the nick is in use, and the channels are rejoined. */
  readonly restoring: boolean;
  readonly before: SessionState["before"];
  private readonly link: IrcLink;
  private readonly lines: SessionLines;
  private readonly roster = new Roster();
  /** The user's resources in the channels, whose JOIN was sent, which are in sync (memberships.ts). */
  private readonly memberships: Memberships;
  private readonly echoes = new Echoes();
  private readonly commands = new PendingCommands();
  private readonly ctcp: CtcpAnswers;
  private isClosed = false;
  /** Listeners of every server line for a while (WHOIS answers). */
  private readonly watchers = new Set<(m: IrcMessage) => void>();
  /** The MOTD, the server's notices and its replies to the user's commands (server-messages.ts). */
  private readonly serverMessages: ServerMessages;

  constructor(
    readonly user: string,
    readonly server: string,
    private current: SessionSettings,
    config: IrcConfig,
    private readonly log: Logger,
    private readonly output: SessionOutput,
    carried?: Carried,
  ) {
    this.restoring = carried !== undefined;
    this.before = carried?.before;
    this.memberships = new Memberships(carried);
    const from = output.serverJid(server);
    this.serverMessages = new ServerMessages(server, this.restoring, log, (body) =>
      output.deliver(this, [{ kind: "message", to: user, from, id: this.newId(), type: "chat", body }]),
    );
    let resolveReady: () => void = () => undefined;
    let rejectReady: (err: GatewayError) => void = () => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    // Whoever opened the session awaits `ready`; this only keeps a failure from being unhandled.
    this.ready.catch(() => undefined);
    this.link = new IrcLink(linkOptions(config, server, current, this.restoring), {
      line: (m) => this.receive(m),
      registered: () => {
        if (this.restoring) this.rejoin();
        resolveReady();
      },
      failed: rejectReady,
      closed: () => {
        this.lines.close();
        this.serverMessages.closed();
        if (this.link.isRegistered && !this.isClosed) {
          log.warn({ jid: user, server }, "IRC connection lost, redialing");
          this.output.lost(this);
        }
      },
      overlong: (bytes) => log.warn({ server, bytes }, "IRC server sent an over-long line; dropped"),
    });
    this.lines = new SessionLines(this.link, server, current);
    this.ctcp = new CtcpAnswers(
      {
        claimChannel: (channel) => output.claimChannelCtcp(server, channel),
        notice: (to, text) => this.send("NOTICE", to, text),
      },
      log,
      { jid: user, server },
    );
    // NickServ identification (services.ts): the password goes only to the network's services.
    const services = {
      send: (command: string, ...args: string[]) => this.send(command, ...args),
      watch: (listener: (m: IrcMessage) => void) => {
        this.watchers.add(listener);
        return () => this.watchers.delete(listener);
      },
    };
    const timeoutMs = config.connectTimeoutSeconds * 1000;
    this.nickserv = identifyWhenReady(
      this.ready,
      services,
      current.services,
      current.nickservPassword,
      timeoutMs,
    );
  }

  /** Dials the server (once). */
  connect(): void {
    if (!this.isClosed) this.link.connect();
  }

  // ---- What handlers and the adapter read ----

  get nick(): string {
    return this.link.nick;
  }

  get registered(): boolean {
    return this.link.isRegistered;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get channels(): ReadonlyMap<string, ReadonlyMap<string, Member>> {
    return this.memberships.channels;
  }

  get outageNoticeSent(): boolean {
    return this.memberships.outageNoticeSent;
  }

  get support(): Support {
    return this.roster.support;
  }

  isSynced(channel: string): boolean {
    return this.memberships.isSynced(channel);
  }

  isRequested(channel: string): boolean {
    return this.memberships.isRequested(channel);
  }

  channel(name: string): ChannelView | undefined {
    return this.roster.channel(name);
  }

  ircChannels(): Iterable<[string, ChannelView]> {
    return this.roster.entries();
  }

  /** What this connection was made with, and the user's forwarding choices as they are now. */
  get settings(): SessionSettings {
    return this.current;
  }

  mentionsOnly(channel: string): boolean {
    return this.current.mentionsOnly.has(channel.toLowerCase());
  }

  awaitsCommand(channel: string): boolean {
    return this.commands.waits(channel);
  }

  nickJid(nick: string): string | null {
    return this.output.nickJid(nick, this.server);
  }

  newId(): string {
    return `irc-${randomUUID()}`;
  }

  /** Whether the server acknowledged an IRCv3 capability. */
  hasCap(cap: string): boolean {
    return this.link.hasCap(cap);
  }

  /** Nicks in each channel now, for comparing after a redial. */
  occupants(): Map<string, string[]> {
    return new Map(
      [...this.memberships.channels.keys()].map((c) => [
        c,
        [...(this.roster.channel(c)?.users.keys() ?? [])],
      ]),
    );
  }

  /** Bytes of `nick!user@host` the server puts in front of our lines when relaying them. */
  prefixBytes(): number {
    // RPL_WELCOME usually ends with our full mask; else assume the longest user and host (RFC 2812 §2.3.1).
    const mask = this.link.hostMask || `${this.nick}!~xmpp@${"h".repeat(63)}`;
    return Buffer.byteLength(mask, "utf8");
  }

  // ---- What the adapter changes, through these methods only ----

  /** A resource joins a channel (recorded before the connection is ready: a leave meanwhile cancels it). */
  addMember(channel: string, jid: string, member: Member): void {
    this.memberships.add(channel, jid, member);
  }

  /** A resource leaves; true when it was the last one in the channel (which is then forgotten). */
  removeMember(channel: string, jid: string): boolean {
    return this.memberships.remove(channel, jid);
  }

  /** Marks a channel's JOIN as sent; false when it already was. */
  requestJoin(channel: string): boolean {
    return this.memberships.request(channel);
  }

  /** The channel is left (or was never entered): no resource is in it any more. */
  forgetChannel(channel: string): void {
    this.memberships.forget(channel);
  }

  /** Every resource is out of every channel (the connection is closing for good). */
  forgetAll(): void {
    this.memberships.forgetAll();
  }

  setMentionsOnly(channels: ReadonlySet<string>): void {
    this.current = { ...this.current, mentionsOnly: channels };
  }

  /** The user was told of the outage: they are told again once their channels are back. */
  markOutageNoticed(): void {
    this.memberships.markOutageNoticed();
  }

  /** Remembers a room message for its echo (see echoes.ts). */
  awaitEcho(pending: PendingEcho): void {
    this.echoes.await(pending);
  }

  /** A channel command (TOPIC) waits for the server's echo or refusal (see pending.ts). */
  expectCommand(channel: string, command: string): { answer: Promise<Refusal | null>; cancel: () => void } {
    return this.commands.expect(channel, command);
  }

  // ---- Sending (flood control, see session-lines.ts) ----

  get queuedLines(): number {
    return this.lines.queued;
  }

  checkRoom(lines: number): void {
    this.lines.checkRoom(lines);
  }

  sendLines(
    command: string,
    target: string,
    lines: readonly string[],
    opts: { handOff?: () => Promise<void>; progress?: { written: number } } = {},
  ): Promise<void> {
    return this.lines.sendLines(command, target, lines, opts);
  }

  send(command: string, ...args: string[]): Promise<void> {
    return this.lines.send(command, ...args);
  }

  /** Sends one command; `handOff` runs once flood control lets it go, right before it is written. */
  sendHandingOff(handOff: () => Promise<void>, command: string, ...args: string[]): Promise<void> {
    return this.lines.sendHandingOff(handOff, command, ...args);
  }

  // ---- The server's own words and its replies to the user's commands (server-messages.ts) ----

  /** Resolves once the connection's own MOTD was read (or it closed), at most `waitMs` from now. */
  welcomed(waitMs: number): Promise<void> {
    return this.serverMessages.welcomed(waitMs);
  }

  /** The listener reads every reply line from now until the returned function is called or it closes. */
  listenReplies(listener: ReplyListener): () => void {
    return this.serverMessages.listen(listener);
  }

  pauseReading(maxMs: number): boolean {
    return !this.isClosed && this.lines.pauseReading(maxMs);
  }

  resumeReading(): void {
    this.lines.resumeReading();
  }

  /** Sends QUIT (when connected) and closes the socket; the session is unusable afterwards. */
  quit(message = QUIT_MESSAGE): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.lines.close();
    this.serverMessages.closed();
    this.link.quit(message);
  }

  // ---- Server lines ----

  private receive(m: IrcMessage): void {
    for (const watch of this.watchers) watch(m);
    let changes: Change[];
    try {
      changes = handle(this, m);
    } catch (err) {
      // A line no handler foresaw is logged and skipped; the other lines and users go on.
      this.log.warn({ err, server: this.server, command: m.command }, "IRC line not handled, skipped");
      return;
    }
    for (const change of changes) this.apply(change);
  }

  private apply(c: Change): void {
    switch (c.kind) {
      case "deliver":
        return this.output.deliver(this, c.events);
      case "archive": {
        // Channel history: the owner archives the line once; its members' copies wait for the id, in order.
        const id = this.output.archive(this, c.channel, c.line);
        if (c.events.length > 0) this.output.deliver(this, [withArchiveId(c.events, id)]);
        return;
      }
      case "roomShown":
        return this.output.deliver(this, [this.output.joinHistory(this, c.events)]);
      case "support":
        return this.roster.setSupport(c.support);
      case "joined":
        return this.roster.joined(c.channel);
      case "parted":
        return this.roster.left(c.channel);
      case "user":
        return this.roster.setUser(c.channel, c.nick, c.prefixes);
      case "userGone":
        return this.roster.removeUser(c.channel, c.nick);
      case "quit":
        return this.roster.removeEverywhere(c.nick);
      case "renamed":
        this.roster.rename(c.from, c.to);
        if (c.self) this.link.renamed(c.to);
        return;
      case "moderated":
        return this.roster.setModerated(c.channel, c.moderated);
      case "topic":
        return this.roster.setTopic(c.channel, c.topic);
      case "synced":
        this.memberships.markSynced(c.channel);
        return this.output.channelsChanged(this);
      case "forget":
        this.forgetChannel(c.channel);
        this.roster.left(c.channel);
        this.output.channelsChanged(this);
        return this.output.idle(this);
      case "echoed":
        return this.echoes.echoed(c.channel, c.line && this.output.archive(this, c.channel, c.line));
      case "echoRefused":
        return this.echoes.refused(c.channel, c.text);
      case "commandEchoed":
        return this.commands.echoed(c.channel, c.command);
      case "commandRefused":
        this.commands.refused(c.channel, c.numeric, c.text);
        return;
      case "ctcp":
        return this.ctcp.answer(c.to, c.reply, c.channel);
      case "conversation":
        return this.output.idle(this);
      case "serverNotice":
      case "motd":
      case "reply":
        return this.serverMessages.apply(c);
    }
  }

  /** After a redial or a restart: the user's channels are joined again (their rooms were kept). */
  private rejoin(): void {
    for (const channel of this.memberships.requestAll()) {
      void this.send("JOIN", channel).catch(() => undefined);
      void this.send("MODE", channel).catch(() => undefined);
    }
  }
}

export { ConnectionClosedError } from "./session-lines.js";
