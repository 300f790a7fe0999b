/**
 * Every Redis key the core uses is built here, under the configured prefix. Adapters get their own
 * namespace through `adapterKey` so they never collide with the core or with each other.
 * Stored values carry a version (`v`), so a later release can read old data without repair code.
 *
 * Hash tags (Redis Cluster): a script or transaction may only touch keys of one hash slot, and a key's slot
 * is the hash of its first `{…}` part. So keys used together carry the same tag:
 * - `{domain}`: a component domain's inbox stream, its delivery attempts, dead letters and inbound-seen
 *   markers (enqueue, acknowledge and set-aside touch them together);
 * - `{adapter}`: the outbound ledger's seen markers and in-flight set; and the adapter's own keys, whose
 *   scripts and transactions span users, numbers and contacts (SMS pool bindings, alert records);
 * - keys touched alone (registrations, settings, instance leases) carry none, so they spread over the
 *   cluster; an adapter key with a tag of its own (the IRC archive's `{server/channel}`) uses `key.own`.
 * On a single Redis tags change nothing but the name; keys from before them are renamed once at start
 * (src/store/migrate.ts, with `legacyKeyTarget` below).
 */
export const STORE_VERSION = 1;

/** Builds an adapter's keys: `key(...)` in the adapter's hash slot, `key.own(...)` placed by its own parts. */
export interface KeyBuilder {
  (...parts: string[]): string;
  /** A key outside the adapter's slot: hashed by its name, or by a `{tag}` among its parts. */
  own(...parts: string[]): string;
}

/** Core key kinds whose second part (a domain or an adapter) became their hash tag. */
const TAGGED_KINDS = ["inbox", "attempts", "dead", "in", "out", "outflight"] as const;

export class Keys {
  constructor(readonly prefix: string) {}

  /** Hash: bare JID → versioned JSON registration, one hash per adapter. */
  registrations(adapter: string): string {
    return `${this.prefix}reg:${adapter}`;
  }
  /** SCAN pattern matching every adapter's registrations hash. */
  allRegistrations(): string {
    return `${escapeGlob(this.prefix)}reg:*`;
  }
  /** SCAN pattern matching every key under the prefix. */
  all(): string {
    return `${escapeGlob(this.prefix)}*`;
  }
  /** String: outbound (sender full JID, stanza id) seen marker, with a TTL. */
  outboundSeen(adapter: string, fullJid: string, stanzaId: string): string {
    return `${this.prefix}out:{${adapter}}:${fullJid}:${stanzaId}`;
  }
  /** Sorted set: outbound claims whose send has not returned yet (member JSON, score = claim time in ms). */
  outboundInFlight(adapter: string): string {
    return `${this.prefix}outflight:{${adapter}}`;
  }
  /** String with a TTL: present while the instance runs (its heartbeat). */
  instanceAlive(instanceId: string): string {
    return `${this.prefix}alive:${instanceId}`;
  }
  /** String with a TTL: which process runs with this instance id (src/store/instance-lease.ts). */
  instanceLease(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}`;
  }
  /**
   * Hash: instance id → versioned JSON of an instance behind ejabberd's balancing (src/balancing/). The
   * balancing keys share one hash tag: a heartbeat is written with the members hash in one transaction.
   */
  balancingMembers(): string {
    return `${this.prefix}balance:{balance}:members`;
  }
  /** String with a TTL (xmpp.balancing.deadAfterSeconds): present while a balanced instance beats. */
  balancingHeartbeat(instanceId: string): string {
    return `${this.prefix}balance:{balance}:beat:${instanceId}`;
  }
  /** String with a TTL: the survivor holding a dead instance's slots (its instance id). */
  slotTakeover(deadId: string): string {
    return `${this.prefix}balance:{balance}:takeover:${deadId}`;
  }
  /** String with a TTL: the fresh instance asking for a taken-over slot back (its instance id). */
  slotGiveBack(deadId: string): string {
    return `${this.prefix}balance:{balance}:giveback:${deadId}`;
  }
  /** Stream: inbound entries given up after too many failed deliveries (the dead letters), one per domain. */
  deadLetters(domain: string): string {
    return `${this.prefix}dead:{${domain}}`;
  }
  /** Hash: inbox entry id → failed delivery attempts so far, one per domain. */
  deliveryAttempts(domain: string): string {
    return `${this.prefix}attempts:{${domain}}`;
  }
  /** Stream: inbound events waiting to be sent to XMPP for one component domain. */
  inbox(domain: string): string {
    return `${this.prefix}inbox:{${domain}}`;
  }
  /** String: inbound dedupe marker for a network id. */
  inboundSeen(domain: string, id: string): string {
    return `${this.prefix}in:{${domain}}:${id}`;
  }
  /** Hash: bare JID → versioned JSON settings of a user for one adapter. */
  settings(adapter: string): string {
    return `${this.prefix}settings:${adapter}`;
  }
  /** String: the key layout the data is in (KEY_SCHEMA in src/store/migrate.ts); absent before tags. */
  schema(): string {
    return `${this.prefix}schema`;
  }
  /** String with a TTL: held by the instance renaming keys from an older layout. */
  schemaLock(): string {
    return `${this.prefix}schema-lock`;
  }
  /** Builder for an adapter's own keys. */
  adapterKey(adapter: string): KeyBuilder {
    const key = (...parts: string[]) => `${this.prefix}a:{${adapter}}:${parts.join(":")}`;
    key.own = (...parts: string[]) => `${this.prefix}a:${adapter}:${parts.join(":")}`;
    return key;
  }

  /**
   * The name a key written before hash tags has now, or undefined when it kept its name (or is not one of
   * ours). Adapter keys whose parts carry a tag of their own (`key.own`) kept theirs.
   */
  legacyKeyTarget(key: string): string | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const adapter = /^a:([^:{}]+):(.*)$/s.exec(rest);
    if (adapter) {
      const [, name = "", parts = ""] = adapter;
      // A whole part in braces is a tag of its own (a JID with a brace in it is never a whole part).
      return /(^|:)\{[^{}]+\}(:|$)/.test(parts) ? undefined : this.adapterKey(name)(parts);
    }
    for (const kind of TAGGED_KINDS) {
      const core = new RegExp(`^${kind}:([^:{}]+)(:.*)?$`, "s").exec(rest);
      if (core) return `${this.prefix}${kind}:{${core[1] ?? ""}}${core[2] ?? ""}`;
    }
    return undefined;
  }
}

/** `prefix` with SCAN's glob characters escaped. */
function escapeGlob(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, "\\$&");
}
