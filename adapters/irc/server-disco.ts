/**
 * Service discovery on the adapter's addresses: the IRC server JID's channel list (disco#items, see
 * channel-list.ts) and what an address is (disco#info: an IRC server, or a room, archived or not, see
 * mam.ts). null everywhere means "not this adapter's to answer": the core answers.
 */
import type { AdapterContext, AddressQuery, DiscoItem, EntityInfo, IdCodec } from "../../src/adapter.js";
import { ChannelLists, serverInfo } from "./channel-list.js";
import { formatIrcId, type IrcTarget } from "./codec.js";
import type { IrcConfig } from "./config.js";
import type { IrcSession } from "./connections.js";

export interface ServerDiscoDeps {
  config: Pick<IrcConfig, "servers" | "channelListCacheSeconds" | "channelListTimeoutSeconds">;
  codec: IdCodec;
  /** The IRC address a JID stands for; throws a GatewayError when it is none of the allowed servers'. */
  target(jid: string): IrcTarget;
  /** A room's disco#info (archived or not), or null (mam.ts). */
  describeRoom(jid: string): Promise<EntityInfo | null>;
  /** The user's connection to a server, registered (opened as a join would); given back with `release`. */
  session(user: string, server: string): Promise<IrcSession>;
  release(session: IrcSession): void;
}

export class ServerDisco {
  private domain: string | undefined;
  private channelLists: ChannelLists | undefined;

  constructor(private readonly deps: ServerDiscoDeps) {}

  start(ctx: AdapterContext): void {
    this.domain = ctx.domain;
    const listed = ctx.metrics.counter("channel_lists_total", "Channel lists answered, by source", [
      "source",
    ]);
    this.channelLists = new ChannelLists({
      redis: ctx.redis,
      key: ctx.key,
      log: ctx.log,
      cacheSeconds: this.deps.config.channelListCacheSeconds,
      timeoutSeconds: this.deps.config.channelListTimeoutSeconds,
      session: (user, server) => this.deps.session(user, server),
      release: (session) => this.deps.release(session),
      counted: (source) => listed.inc({ source }),
    });
  }

  /** The channels of the IRC server a JID stands for; null for any other JID. */
  async items(q: AddressQuery): Promise<DiscoItem[] | null> {
    const server = this.serverOf(q.toJid);
    const domain = this.domain;
    if (server === undefined || !this.channelLists || domain === undefined) return null;
    return this.channelLists.items(q.user, server, (channel) => {
      try {
        const id = formatIrcId({ kind: "channel", channel: channel.toLowerCase(), server });
        return `${this.deps.codec.encode(id)}@${domain}`;
      } catch {
        return null;
      }
    });
  }

  /** An IRC server (its channel list) or a room (archived or not); null: the core answers. */
  async info(q: AddressQuery): Promise<EntityInfo | null> {
    if (q.toJid === this.domain) return null; // the gateway itself
    let target: IrcTarget;
    try {
      target = this.deps.target(q.toJid);
    } catch {
      return null; // not an address of this gateway's servers
    }
    if (target.kind === "server") return serverInfo(target.server);
    return target.kind === "channel" ? this.deps.describeRoom(q.toJid) : null;
  }

  /** The IRC server a JID stands for (the bare domain for the fixed server), or undefined. */
  private serverOf(jid: string): string | undefined {
    if (jid === this.domain) return this.deps.config.servers.fixed;
    const target = this.deps.target(jid);
    return target.kind === "server" ? target.server : undefined;
  }
}
