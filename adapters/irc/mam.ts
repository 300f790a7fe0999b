/**
 * The IRC adapter's side of channel history: the archive (archive.ts) fed by the connections' channel
 * lines, XEP-0313 queries on room JIDs (the core parses them: src/core/mam.ts), the join history
 * (history.ts), the rooms' disco#info, and the per-channel opt-out command.
 *
 * Who may read a channel's archive: the gateway's admins, and users who joined that channel through the
 * gateway at least once (a Redis set per channel). The lines of a public channel are then readable by its
 * past members, as IRC's own logs and bouncers make them; a stranger is refused with `forbidden`.
 *
 * The opt-out (command "irc-channel-archive", on the room JID or the gateway): for the gateway's admins and
 * for users who are operators of the channel on IRC through the gateway. Turning the archive off deletes
 * what was kept and stops archiving; turning it on starts again from the next line.
 */
import type {
  AdapterContext,
  AdhocCommand,
  ArchivePage,
  ArchiveQuery,
  EntityInfo,
  HistoryRequest,
  InboundEvent,
  RoomArchive,
} from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import { NS } from "../../src/xmpp/ns.js";
import { ChannelArchive, Ordinals, type ChannelLine } from "./archive.js";
import type { IrcTarget } from "./codec.js";
import { archivePolicy, type IrcConfig } from "./config.js";
import type { IrcConnections, IrcSession } from "./connections.js";
import { mircToText } from "./format.js";
import { fitChars, historyEvent, historyRange, insertHistory, PendingJoins } from "./history.js";

/** IRC channel prefixes of an operator or higher (op, admin, owner). */
const OPERATOR_PREFIXES = /[@&~]/;

const localOf = (jid: string): string => jid.slice(0, jid.lastIndexOf("@"));

/** A PRIVMSG text as handlers.ts shows it: formatting to text, a CTCP ACTION as "/me …". */
function shownLine(raw: string): string {
  // eslint-disable-next-line no-control-regex -- CTCP is delimited by \x01
  const action = /^\x01ACTION (.*?)\x01?$/s.exec(raw);
  return action ? `/me ${mircToText(action[1] ?? "")}` : mircToText(raw);
}

export interface IrcArchiveDeps {
  config: IrcConfig;
  connections: IrcConnections;
  /** A room JID (bare) → its channel; throws GatewayError for what is not an allowed IRC address. */
  target(jid: string): IrcTarget;
}

export class IrcArchive implements RoomArchive {
  private store: ChannelArchive | undefined;
  private ctx: AdapterContext | undefined;
  private readonly ordinals = new WeakMap<IrcSession, Ordinals>();
  private readonly pending = new PendingJoins();

  constructor(private readonly deps: IrcArchiveDeps) {}

  start(ctx: AdapterContext): void {
    this.ctx = ctx;
    this.store = new ChannelArchive(ctx.redis, ctx.key, (server) => archivePolicy(this.deps.config, server));
  }

  private archive(): ChannelArchive {
    if (!this.store) throw new Error("the IRC archive is not started");
    return this.store;
  }

  private channelOf(jid: string): { server: string; channel: string } {
    const target = this.deps.target(jid);
    if (target.kind !== "channel")
      throw new GatewayError("item-not-found", `${jid} is not an IRC channel: only channels have archives.`);
    return target;
  }

  /**
   * A line a connection saw in a channel it is in: archived once; resolves to its archive id (undefined
   * when the channel is not archived, or the store failed: the line is still delivered live). Never rejects.
   */
  line(session: IrcSession, channel: string, line: ChannelLine): Promise<string | undefined> | undefined {
    const key = channel.toLowerCase();
    if (!this.store || !session.channels.has(key) || !session.isSynced(key)) return undefined;
    let ordinals = this.ordinals.get(session);
    if (!ordinals) this.ordinals.set(session, (ordinals = new Ordinals()));
    return this.store.record(ordinals, session.server, key, line).catch((err: unknown) => {
      this.ctx?.log.warn({ err, server: session.server, channel: key }, "channel line not archived");
      return undefined;
    });
  }

  /**
   * The user's own lines (raw IRC text, /me as CTCP ACTION) as the channel's other members see them; the first
   * line's archive id. Never rejects.
   */
  ownLines(session: IrcSession, channel: string, lines: string[]): Promise<string | undefined> | undefined {
    const ids = lines.map((raw) => this.line(session, channel, { nick: session.nick, body: shownLine(raw) }));
    return ids[0];
  }

  /** A resource is joining a room: it may read the archive from now on, and gets history once in. */
  async joining(
    from: string,
    user: string,
    roomJid: string,
    history: HistoryRequest | undefined,
  ): Promise<void> {
    const { server, channel } = this.channelOf(roomJid);
    this.pending.add(from, roomJid, history);
    await this.archive().addReader(server, channel, user);
  }

  /** A join's events with the history each joining resource asked for before its subject. */
  withHistory(session: IrcSession, events: readonly InboundEvent[]): Promise<InboundEvent[]> {
    return insertHistory(events, (to, roomJid) => {
      const join = this.pending.take(to, roomJid);
      if (!join) return undefined;
      return this.history(session.server, roomJid, to, join.request).catch((err: unknown) => {
        this.ctx?.log.warn({ err, jid: to }, "join history not read");
        return [];
      });
    });
  }

  private async history(
    server: string,
    roomJid: string,
    to: string,
    request: HistoryRequest | undefined,
  ): Promise<InboundEvent[]> {
    const policy = archivePolicy(this.deps.config, server);
    const range = historyRange(request, policy.historyLines);
    if (range.max === 0 || !policy.enabled) return [];
    const { channel } = this.channelOf(roomJid);
    const page = await this.archive().page(server, channel, {
      max: range.max,
      before: "",
      ...(range.startMs === undefined ? {} : { startMs: range.startMs }),
    });
    return fitChars(page.lines, range.maxChars).map((line) => historyEvent(to, roomJid, line));
  }

  async query(q: ArchiveQuery): Promise<ArchivePage> {
    const { server, channel } = this.channelOf(q.room);
    if (!archivePolicy(this.deps.config, server).enabled || (await this.archive().isOff(server, channel)))
      throw new GatewayError("item-not-found", `${channel} on ${server} is not archived by this gateway.`);
    if (!this.isAdmin(q.user) && !(await this.archive().isReader(server, channel, q.user)))
      throw new GatewayError(
        "forbidden",
        `The archive of ${channel} on ${server} is open to those who joined it through this gateway; join it first.`,
      );
    const page = await this.archive().page(server, channel, {
      max: q.max,
      ...(q.start ? { startMs: q.start.getTime() } : {}),
      ...(q.end ? { endMs: q.end.getTime() } : {}),
      ...(q.withNick === undefined ? {} : { nick: q.withNick }),
      ...(q.after === undefined ? {} : { after: q.after }),
      ...(q.before === undefined ? {} : { before: q.before }),
    });
    return {
      complete: page.complete,
      ...(page.count === undefined ? {} : { count: page.count }),
      lines: page.lines.map((l) => ({
        id: l.id,
        stamp: new Date(l.ms).toISOString(),
        body: l.body,
        ...(l.nick === undefined ? {} : { nick: l.nick }),
        ...(l.subject === undefined ? {} : { subject: l.subject }),
      })),
    };
  }

  /** XEP-0045 §6.4 room info; urn:xmpp:mam:2 while the channel is archived (XEP-0313 §6.1). */
  async describe(jid: string): Promise<EntityInfo | null> {
    let target: IrcTarget;
    try {
      target = this.deps.target(jid);
    } catch {
      return null;
    }
    if (target.kind !== "channel") return null;
    const archived =
      archivePolicy(this.deps.config, target.server).enabled &&
      !(await this.archive().isOff(target.server, target.channel));
    return {
      identities: [{ category: "conference", type: "irc", name: `${target.channel} on ${target.server}` }],
      features: [
        NS.DISCO_INFO,
        NS.MUC,
        NS.STANZA_ID,
        "muc_public",
        "muc_open",
        "muc_nonanonymous",
        ...(archived ? [NS.MAM] : []),
      ],
    };
  }

  private isAdmin(user: string): boolean {
    return (this.ctx?.admins ?? []).some((a) => a.toLowerCase() === user.toLowerCase());
  }

  /** Whether the user is an operator of the channel on IRC, on their connection through the gateway. */
  private isOperator(user: string, server: string, channel: string): boolean {
    const session = this.deps.connections.get(user, server);
    const prefix = session?.channel(channel)?.users.get(session.nick) ?? "";
    return OPERATOR_PREFIXES.test(prefix);
  }

  readonly commands: readonly AdhocCommand[] = [
    {
      node: "irc-channel-archive",
      name: "Channel archive (history) on or off",
      form: (_user, to) => {
        let room = "";
        try {
          if (to !== undefined && to.includes("@") && this.deps.target(to).kind === "channel")
            room = localOf(to);
        } catch {
          room = "";
        }
        return {
          title: "Channel archive",
          instructions:
            "Whether the gateway keeps this channel's lines (for history on join and XEP-0313 archive queries). Off deletes what it kept. For the channel's operators and the gateway's administrators.",
          fields: [
            {
              var: "room",
              type: "text-single",
              label: "Channel (#chan%server)",
              required: true,
              ...(room ? { value: room } : {}),
            },
            {
              var: "archive",
              type: "list-single",
              label: "Archive",
              required: true,
              value: "on",
              options: [
                { label: "Keep the channel's lines", value: "on" },
                { label: "Do not keep them (and delete those kept)", value: "off" },
              ],
            },
          ],
        };
      },
      run: async (user, values) => {
        const room = single(values, "room");
        const { server, channel } = this.channelOf(
          room.includes("@") ? room : `${room}@${this.ctx?.domain ?? ""}`,
        );
        if (!this.isAdmin(user) && !this.isOperator(user, server, channel))
          throw new GatewayError(
            "forbidden",
            `Only the operators of ${channel} (joined through this gateway) and the gateway's administrators can change its archive.`,
          );
        const off = single(values, "archive") === "off";
        await this.archive().setOff(server, channel, off);
        this.ctx?.log.info(
          { jid: user, server, channel, archive: off ? "off" : "on" },
          "channel archive changed",
        );
        return {
          note: off
            ? `${channel} on ${server} is no longer archived; the lines kept were deleted.`
            : `${channel} on ${server} is archived again from now on.`,
        };
      },
    },
  ];
}
