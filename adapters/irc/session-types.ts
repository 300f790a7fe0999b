/** What a connection is made with (SessionSettings, Carried) and where its results go (SessionOutput). */
import type { InboundEvent } from "../../src/adapter.js";
import type { ChannelLine } from "./archive.js";
import type { IrcConfig } from "./config.js";
import type { IrcMessage } from "./message.js";
import type { Member, SessionState } from "./handlers.js";
import type { IrcSession } from "./session.js";
import type { Emitted } from "./store-queue.js";

/** How one user connects to one server: the config's defaults with the user's own settings applied. */
export interface SessionSettings {
  nick: string;
  /** SASL PLAIN (IRCv3 sasl) account and password. */
  sasl?: { account: string; password: string };
  /** Sent as `PRIVMSG NickServ :IDENTIFY <password>` once the nick is registered. */
  nickservPassword?: string;
  /** TLS port instead of the configured one. */
  port?: number;
  fallbackCharset: string;
  /** Flood control: lines sent at once, then one every lineDelayMs (never below the server's floor). */
  floodBurst: number;
  lineDelayMs: number;
  /** Lines held for flood control at most; a message beyond is refused. */
  maxQueuedLines: number;
  /** Who may receive the NickServ password (see services.ts). */
  services: IrcConfig["services"];
  /**
   * Channels (lowercased) the user only wants messages mentioning their nick from (settings.ts); changed
   * on a live session by IrcSession.setMentionsOnly and carried over to the connection a redial makes.
   */
  mentionsOnly: ReadonlySet<string>;
}

/** Where a session's results go: one way, from IRC lines towards the user and the connection's owner. */
export interface SessionOutput {
  /** Events for the user (or events still being made: a line waiting for its archive id), in IRC's order. */
  deliver(session: IrcSession, events: readonly Emitted[]): void;
  /** Channel history: archives a channel line once for all connections; its archive id. Never rejects. */
  archive(session: IrcSession, channel: string, line: ChannelLine): Promise<string | undefined>;
  /** Channel history: a room's join events with the history each joining resource asked for. Never rejects. */
  joinHistory(session: IrcSession, events: InboundEvent[]): Promise<readonly InboundEvent[]>;
  /** The channels the user is in changed (recorded for a rejoin after a restart). */
  channelsChanged(session: IrcSession): void;
  /** The connection may have nothing left to do (a channel gone) or was used (a private message). */
  idle(session: IrcSession): void;
  /** The connection is gone after it worked. */
  lost(session: IrcSession): void;
  /** True for the one connection that answers a CTCP query just sent to this channel (see ctcp.ts). */
  claimChannelCtcp(server: string, channel: string): Promise<boolean>;
  /** The JID of an IRC nick on a server, or null when the nick cannot be a JID. */
  nickJid(nick: string, server: string): string | null;
  /** The JID the server itself speaks from (its MOTD and notices, see server-messages.ts). */
  serverJid(server: string): string;
}

/** What a redial carries over from the connection it replaces (see IrcConnections). */
export interface Carried {
  /** Join these again once registered, keeping the user's rooms (a redial, or a restart). */
  channels: Map<string, Map<string, Member>>;
  before: SessionState["before"];
  outageNoticeSent: boolean;
}

/** Reads the server's replies to a command the user sent (see IrcSession.listenReplies). */
export interface ReplyListener {
  /** A numeric, or our own NICK or user MODE change, in the order the server sent them. */
  line(message: IrcMessage): void;
  /** The connection is gone: no reply will come. */
  closed(): void;
}
