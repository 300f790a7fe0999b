/**
 * Every Redis key the core uses is built here, under the configured prefix. Adapters get their own
 * namespace through `adapterKey` so they never collide with the core or with each other.
 * Stored values carry a version (`v`), so a later release can read old data without repair code.
 */
export const STORE_VERSION = 1;

export class Keys {
  constructor(readonly prefix: string) {}

  /** Hash: bare JID → versioned JSON registration, one hash per adapter. */
  registrations(adapter: string): string {
    return `${this.prefix}reg:${adapter}`;
  }
  /** SCAN pattern matching every adapter's registrations hash. */
  allRegistrations(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, "\\$&")}reg:*`;
  }
  /** String: outbound (sender full JID, stanza id) seen marker, with a TTL. */
  outboundSeen(adapter: string, fullJid: string, stanzaId: string): string {
    return `${this.prefix}out:${adapter}:${fullJid}:${stanzaId}`;
  }
  /** Sorted set: outbound claims whose send has not returned yet (member JSON, score = claim time in ms). */
  outboundInFlight(adapter: string): string {
    return `${this.prefix}outflight:${adapter}`;
  }
  /** String with a TTL: present while the instance runs (its heartbeat). */
  instanceAlive(instanceId: string): string {
    return `${this.prefix}alive:${instanceId}`;
  }
  /** String with a TTL: which process runs with this instance id (src/store/instance-lease.ts). */
  instanceLease(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}`;
  }
  /** Hash: instance id → versioned JSON of an instance behind ejabberd's balancing (src/balancing/). */
  balancingMembers(): string {
    return `${this.prefix}balance:members`;
  }
  /** String with a TTL (xmpp.balancing.deadAfterSeconds): present while a balanced instance beats. */
  balancingHeartbeat(instanceId: string): string {
    return `${this.prefix}balance:beat:${instanceId}`;
  }
  /** String with a TTL: the survivor holding a dead instance's slots (its instance id). */
  slotTakeover(deadId: string): string {
    return `${this.prefix}balance:takeover:${deadId}`;
  }
  /** String with a TTL: the fresh instance asking for a taken-over slot back (its instance id). */
  slotGiveBack(deadId: string): string {
    return `${this.prefix}balance:giveback:${deadId}`;
  }
  /** Stream: inbound entries given up after too many failed deliveries (the dead letters), one per domain. */
  deadLetters(domain: string): string {
    return `${this.prefix}dead:${domain}`;
  }
  /** Hash: inbox entry id → failed delivery attempts so far, one per domain. */
  deliveryAttempts(domain: string): string {
    return `${this.prefix}attempts:${domain}`;
  }
  /** Stream: inbound events waiting to be sent to XMPP for one component domain. */
  inbox(domain: string): string {
    return `${this.prefix}inbox:${domain}`;
  }
  /** String: inbound dedupe marker for a network id. */
  inboundSeen(domain: string, id: string): string {
    return `${this.prefix}in:${domain}:${id}`;
  }
  /** Hash: bare JID → versioned JSON settings of a user for one adapter. */
  settings(adapter: string): string {
    return `${this.prefix}settings:${adapter}`;
  }
  /** Builder for an adapter's own keys. */
  adapterKey(adapter: string): (...parts: string[]) => string {
    return (...parts) => `${this.prefix}a:${adapter}:${parts.join(":")}`;
  }
}
