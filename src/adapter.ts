/**
 * The contract between the core and an adapter (SMS, email, IRC, echo…).
 *
 * The core owns XMPP: it parses stanzas, checks access and registration, remembers outbound ids, and turns
 * these domain events into stanzas and back. An adapter owns one foreign network: it gets plain events,
 * never stanzas, and hands inbound traffic to `ctx.deliver()`, which returns once the event is durable.
 *
 * Nothing in src/ imports an adapter; src/compose.ts wires the factories (see adapters/registry.ts).
 */
import type { RouteOptions } from "fastify";
import type { RedisClient } from "./store/redis-client.js";
import type { KeyBuilder } from "./store/keys.js";
import type { Counter, Gauge, Histogram } from "prom-client";
import type { z } from "zod";
import type { Logger } from "./log.js";
import type { AdapterOptionsSchema, AdapterBaseConfig } from "./config/schema.js";
import { GatewayError, type ErrorCondition, type ErrorType } from "./xmpp/errors.js";
import type { AdhocCommand, RegistrationSpec } from "./adapter-forms.js";
import type { AddressQuery, DiscoItem, EntityInfo, RoomArchive } from "./adapter-rooms.js";

export { InvalidInboundEventError } from "./delivery/refused.js";
export type {
  AdhocCommand,
  CommandResult,
  FieldType,
  Form,
  FormField,
  FormValues,
  RegistrationSpec,
} from "./adapter-forms.js";
export type {
  AddressQuery,
  ArchivedLine,
  ArchivePage,
  ArchiveQuery,
  DiscoItem,
  EntityInfo,
  RoomArchive,
} from "./adapter-rooms.js";

/** Pure mapping between a JID localpart on the adapter's domain and the foreign id (phone, email, nick…). */
export interface IdCodec {
  /** JID localpart as received (XEP-0106 escaped) → normalised foreign id. Throws GatewayError. */
  decode(localpart: string): string;
  /** Foreign id → JID localpart (escaped as XEP-0106 requires). */
  encode(foreignId: string): string;
  /** What a user typed in a jabber:iq:gateway prompt → foreign id. Throws GatewayError. */
  fromPrompt(prompt: string): string;
}

export interface Attachment {
  url: string;
  desc?: string;
}

/** A message from an XMPP user to a contact on the adapter's network. */
export interface OutboundMessage {
  /** Full JID of the sender. */
  from: string;
  /** Bare JID of the sender. */
  user: string;
  /** The contact's JID as addressed (bare). */
  toJid: string;
  /** The full `to`, with a resource when there is one (XEP-0045 private message: room@domain/nick). */
  toFull: string;
  /** Foreign id decoded from the JID localpart by the adapter's codec. */
  to: string;
  /** Stanza id: the sender's, or one the core made up when the stanza had none. */
  id: string;
  type: "chat" | "normal" | "groupchat";
  body: string;
  subject?: string;
  thread?: string;
  attachments: Attachment[];
  /** The sender asked for an XEP-0184 receipt. */
  receiptRequested: boolean;
  /** Registration data the user stored with this adapter, if any. */
  registration: Record<string, string> | null;
  /**
   * Call (and await) right before the message leaves the process: the request, the SMTP transaction or
   * the first IRC line. Until then the message is "queued": an error is a refusal (the id is freed) and a
   * crash is reported as "not sent, send again". From then on it is "on the wire": an error not marked
   * SendRefused, or a crash, means it may have been sent. If it throws (the store is down), do not send.
   */
  handOff(): Promise<void>;
}

/**
 * Outcomes of a send (DESIGN.md). What `send()` returns:
 * - `delivered`: the network confirmed it; the core sends the receipt now (if requested);
 * - `accepted`: the network took it; the adapter reports the outcome later through `ctx.deliver()` (a
 *   `receipt` or an `error` event for the stanza id, which the core also records in its ledger), or never
 *   when the network has no delivery reports.
 * What `send()` throws:
 * - **refused** — the network certainly did not take it: any error thrown before `message.handOff()`, and
 *   a SendRefused after it (the network answered no). The sender gets the error; the id may be sent again.
 * - **maybe sent** — the network may have taken it: a MaybeSent, and (the safe default) any other error
 *   thrown after `message.handOff()`. The sender is told it may or may not have arrived; the id is never
 *   sent again, and a resend gets the same answer.
 * The core keeps the ledger; an adapter only reports which outcome it saw.
 */
export type SendOutcome = { status: "delivered" } | { status: "accepted" };

/** The network answered no after the hand-off: the message was certainly not taken; the id is freed. */
export class SendRefused extends GatewayError {
  constructor(condition: ErrorCondition, text: string, options: { type?: ErrorType; cause?: unknown } = {}) {
    super(condition, text, options);
    this.name = "SendRefused";
  }
}

/**
 * The network may have taken the message (a timeout after the request left, a relay silent after DATA);
 * the text must say so. The id is kept: never sent twice.
 */
export class MaybeSent extends GatewayError {
  constructor(condition: ErrorCondition, text: string, options: { type?: ErrorType; cause?: unknown } = {}) {
    super(condition, text, options);
    this.name = "MaybeSent";
  }
}

/** Presence from an XMPP user to a JID on the adapter's domain (e.g. a MUC join for IRC). */
export interface OutboundPresence {
  from: string;
  user: string;
  toJid: string;
  /** Full `to` including resource (the MUC nick). */
  toFull: string;
  type: "available" | "unavailable";
  /** The presence carried a MUC <x/> (XEP-0045 join). */
  muc: boolean;
  show?: string;
  status?: string;
  /** XEP-0045 §7.2.14: the history the joining user asked for (`<history/>`); absent without the element. */
  history?: HistoryRequest;
}

/** XEP-0045 §7.2.14 `<history/>` attributes; an attribute that is absent or not a number is left out. */
export interface HistoryRequest {
  maxstanzas?: number;
  maxchars?: number;
  seconds?: number;
  /** XEP-0082 date-time, as a Date. */
  since?: Date;
}

/** Events an adapter hands to the core for durable delivery to an XMPP user. */
export type InboundEvent =
  | {
      kind: "message";
      /** XMPP user (bare or full JID). */
      to: string;
      /** Sender JID on the adapter's domain (full or bare; the bare domain for the gateway itself). */
      from: string;
      /** Stable id derived from the network's id, so redelivery after a crash reuses it. */
      id: string;
      type?: "chat" | "normal" | "groupchat" | "headline";
      /** "" with a subject: a subject change alone, sent without <body/> (XEP-0045 §8.1). */
      body: string;
      subject?: string;
      thread?: string;
      attachments?: Attachment[];
      /** XEP-0203 timestamp (ISO 8601) when the network says when it was sent. */
      delay?: string;
      /** XEP-0172 nickname of the sender. */
      nick?: string;
      /** Ask the user's client for an XEP-0184 receipt (it comes back through Adapter.report). */
      requestReceipt?: boolean;
      /** XEP-0333: the message is markable (displayed markers come back through Adapter.report). */
      markable?: boolean;
      /** XEP-0308: this message corrects the earlier one with this id. */
      replaces?: string;
      /**
       * The id the room's archive (XEP-0313) gave this line: the stanza-id (XEP-0359) is then this id, `by` the
       * room's bare JID, the same for every user and in MAM results, so clients drop one against the other.
       */
      archiveId?: string;
    }
  | { kind: "receipt"; to: string; from: string; id: string; receiptFor: string }
  | { kind: "error"; to: string; from: string; id: string; condition: ErrorCondition; text: string }
  | PresenceEvent;

/**
 * Presence from a JID on the adapter's domain: a contact's status, or an XEP-0045 occupant (`from` is then
 * room@domain/nick and `muc` carries the muc#user item and status codes, e.g. 110 self, 303 nick change).
 */
export interface PresenceEvent {
  kind: "presence";
  to: string;
  from: string;
  id?: string;
  type?: "unavailable" | "error";
  show?: "away" | "chat" | "dnd" | "xa";
  status?: string;
  muc?: {
    affiliation: "owner" | "admin" | "member" | "outcast" | "none";
    role: "moderator" | "participant" | "visitor" | "none";
    /** Real JID of the occupant, when the room shows it. */
    jid?: string;
    /** New nick, with status 303. */
    nick?: string;
    statusCodes?: number[];
    /** XEP-0045 §9.1: why the occupant was removed (a kick's reason), as `<item><reason/>`. */
    reason?: string;
    /** XEP-0045 §9.1: the nick of the occupant who removed them, as `<item><actor nick/>`. */
    actor?: string;
  };
  /** With type "error": why the join (or other presence) failed. */
  error?: { condition: ErrorCondition; text: string };
}

/**
 * What a user's client or server says about a message the adapter sent to the user: an XEP-0184 receipt, an
 * XEP-0333 chat marker (addressed to the contact JID that sent the message), or the server's error bounce
 * (e.g. service-unavailable: no such user, or nowhere to deliver it).
 */
export interface UserReport {
  kind: "received" | "displayed" | "error";
  /** Full JID of the user (for an error: the JID the message was sent to). */
  from: string;
  /** Bare JID of the user. */
  user: string;
  /** The contact JID on the adapter's domain the report is addressed to (bare). */
  toJid: string;
  /** Id of the message the report is about. */
  id: string;
  /** With kind "error": the stanza error condition. */
  condition?: string;
}

/** Narrow view of registrations given to an adapter. */
export interface RegistrationReader {
  get(user: string): Promise<Record<string, string> | null>;
  list(): Promise<string[]>;
}

/** Per-user settings of an adapter (what its ad-hoc settings commands store). */
export interface SettingsStore {
  get(user: string): Promise<Record<string, string>>;
  put(user: string, values: Record<string, string>): Promise<void>;
  remove(user: string): Promise<void>;
}

/** Maps between ids of the two sides (e.g. Twilio MessageSid → stanza), each entry with a TTL. */
export interface IdMap {
  put(kind: string, id: string, value: Record<string, string>, ttlSeconds: number): Promise<void>;
  get(kind: string, id: string): Promise<Record<string, string> | null>;
  delete(kind: string, id: string): Promise<void>;
}

/** The gateway's HTTP server, for an adapter's webhooks. */
export interface HttpContext {
  /** Base URL the outside world reaches the server at (config http.publicUrl), without a trailing slash. */
  readonly publicUrl: string;
  /** Full public URL of one of this adapter's routes, e.g. publicUrlFor("/twilio/sms"). */
  publicUrlFor(path: string): string;
  /** Adds a route under /<adapter key>/…; call from start(). */
  route(options: RouteOptions): void;
  /**
   * Adds a route at an absolute path on the public listener (a public API such as /api/v1/…); call from
   * start(). The adapter owns the path: two adapters claiming one fail at start.
   */
  routeAbsolute?(options: RouteOptions): void;
}

/** Key builder for the adapter's own Redis keys (prefixed with the gateway prefix and adapter key). */
export type { KeyBuilder } from "./store/keys.js";

export interface AdapterContext {
  /** The component domain this adapter serves, e.g. sms.example.org. */
  readonly domain: string;
  readonly log: Logger;
  readonly redis: RedisClient;
  readonly key: KeyBuilder;
  readonly admins: readonly string[];
  readonly registrations: RegistrationReader;
  /** Per-user settings; deleted with the user's registration. */
  readonly settings: SettingsStore;
  readonly ids: IdMap;
  /** Present when the HTTP server is enabled (config http.enabled). */
  readonly http: HttpContext | undefined;
  /**
   * Durably queues an event for an XMPP user; resolves once it is persisted. Throws when the store is
   * unavailable: answer the network "try later" (HTTP 503, SMTP 451). With `dedupeId` (the network's own id:
   * Twilio MessageSid, Message-ID, IRC msgid) a repeat is dropped and false is returned. An event the
   * inbound schema refuses (src/delivery/event-schema.ts) rejects with InvalidInboundEventError: retrying it
   * cannot help; answer the network as for a message refused.
   */
  deliver(event: InboundEvent, options?: { dedupeId?: string }): Promise<boolean>;
  /** Queue a plain message from the gateway's domain to every admin. */
  notifyAdmins(text: string): Promise<void>;
  /** This gateway instance's id (config `instanceId`): stable across restarts, unique among instances. */
  readonly instanceId: string;
  /** Prometheus metrics of this adapter, served on /metrics as `xgw_<adapter>_<name>`. */
  readonly metrics: AdapterMetrics;
  /** Bare JIDs registered with any adapter of this gateway, each once (e.g. for a notice to everyone). */
  registeredAnywhere(): Promise<string[]>;
}

/** The slice of prom-client an adapter uses; names are prefixed with `xgw_<adapter>_` by the core. */
export interface AdapterMetrics {
  counter(name: string, help: string, labelNames?: readonly string[]): Counter<string>;
  /** A gauge read when /metrics is scraped: `collect` sets its value(s). */
  gauge(
    name: string,
    help: string,
    collect?: (gauge: Gauge<string>) => void | Promise<void>,
    labelNames?: readonly string[],
  ): Gauge<string>;
  /** `buckets` in the metric's unit (seconds for durations, as Prometheus names them `_seconds`). */
  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames?: readonly string[],
  ): Histogram<string>;
}

export interface Adapter {
  /** XEP-0100 gateway type for the disco identity (`sms`, `smtp`, `irc`, `xmpp`…). */
  readonly gatewayType: string;
  /** Human name for the disco identity and messages. */
  readonly name: string;
  readonly codec: IdCodec;
  /** Extra disco#info features. */
  readonly features?: readonly string[];
  /** Whether users must register before sending (SMS, email) or not (IRC). */
  readonly requiresRegistration: boolean;
  /** jabber:iq:gateway texts (XEP-0100 §6), and an example foreign id for help texts. */
  readonly prompt: { desc: string; prompt: string; example: string };
  readonly registration?: RegistrationSpec;
  readonly commands?: readonly AdhocCommand[];
  /** Archives of the adapter's rooms, answered with XEP-0313 on the room JIDs. */
  readonly archive?: RoomArchive;
  /**
   * XEP-0030 disco#items of an address (e.g. the channels of an IRC server), in a stable order: the core
   * pages them with XEP-0059. null: the address lists nothing (the core's answer).
   */
  discoItems?(query: AddressQuery): Promise<DiscoItem[] | null>;
  /**
   * XEP-0030 disco#info of an address, when it is more than a contact (an IRC server, a room and whether it is
   * archived); null: a contact.
   */
  discoInfo?(query: AddressQuery): Promise<EntityInfo | null> | EntityInfo | null;

  start?(ctx: AdapterContext): Promise<void>;
  stop?(): Promise<void>;
  /**
   * Another instance died and this one now serves its users (self-healing balancing on ejabberd): take over
   * what the adapter held under that instance id (IRC: its connection leases), without waiting for expiry.
   */
  instanceGone?(instanceId: string): Promise<void>;
  send(message: OutboundMessage): Promise<SendOutcome>;
  presence?(presence: OutboundPresence): Promise<void>;
  /**
   * A user's own presence, as the server sends it to the adapter's domain once the user shares it (the core
   * asks for it, XEP-0100 §4.1 style, when the user subscribes to the domain and this method exists):
   * "revoked" when the user stopped sharing it.
   */
  userPresence?(presence: {
    from: string;
    user: string;
    type: "available" | "unavailable" | "revoked";
  }): Promise<void>;
  /** Receipts, chat markers and error bounces for messages the adapter sent (see UserReport). */
  report?(report: UserReport): Promise<void>;
}

/** What adapters/registry.ts lists: one factory per config key. */
export interface AdapterFactory<S extends AdapterOptionsSchema = AdapterOptionsSchema> {
  /** The adapter's own config fields, merged with the shared base fields under adapters.<key>. */
  readonly configSchema: S;
  /**
   * `secret(name)` returns the value of an environment variable that an `…Env` field of this adapter's
   * config names (checked at start: a missing one is a config error, exit 2).
   */
  create(config: AdapterBaseConfig & z.output<S>, secret: (envName: string) => string): Adapter;
}

/** Type-checks a factory against its own schema, then erases the schema type for the registry. */
export function defineAdapter<S extends AdapterOptionsSchema>(factory: AdapterFactory<S>): AdapterFactory {
  // The registry only calls create() with a config parsed by this same schema (methods are bivariant).
  return factory;
}
