/**
 * What an adapter answers about its addresses (part of the contract in src/adapter.ts): XEP-0030 disco of an
 * address (an IRC server, a room) and XEP-0313 archives of its rooms.
 */
import type { Identity } from "./xmpp/stanzas.js";

/** An XEP-0313 query on a room's archive, parsed by the core (data form and XEP-0059 RSM). */
export interface ArchiveQuery {
  /** Bare JID of the user asking. */
  user: string;
  /** Bare JID of the room. */
  room: string;
  start?: Date;
  end?: Date;
  /** Only lines of this occupant (the resource of `with` = room@domain/nick). */
  withNick?: string;
  /** Page size, already capped by the core. */
  max: number;
  /** RSM: the page after this archive id. */
  after?: string;
  /** RSM: the page before this archive id; "" for the last page. */
  before?: string;
}

/** One archived line, as MAM returns it. */
export interface ArchivedLine {
  /** Archive id: the XEP-0359 stanza-id live delivery carried. */
  id: string;
  /** XEP-0082 date-time of the line. */
  stamp: string;
  /** The occupant's nick (from = room@domain/nick); absent for the room itself. */
  nick?: string;
  body: string;
  subject?: string;
}

export interface ArchivePage {
  lines: ArchivedLine[];
  /** No line is left beyond this page in the query's direction. */
  complete: boolean;
  /** Lines the query matches in all, when cheap to tell. */
  count?: number;
}

/** An adapter's room archive (XEP-0313 on room JIDs). Throws GatewayError (forbidden, item-not-found…). */
export interface RoomArchive {
  query(q: ArchiveQuery): Promise<ArchivePage>;
}

/** What an address is (XEP-0030 disco#info): its identities and features. */
export interface EntityInfo {
  identities: Identity[];
  features: readonly string[];
}

/** A disco query on an address of the adapter's domain (not the bare domain, unless it stands for one). */
export interface AddressQuery {
  /** Full JID of the requester. */
  from: string;
  /** Bare JID of the requester (access already checked). */
  user: string;
  /** The address asked about (bare). */
  toJid: string;
}

/** One XEP-0030 item an address lists (e.g. an IRC server's channel). */
export interface DiscoItem {
  jid: string;
  name: string;
}
