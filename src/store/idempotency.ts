import type { RedisClient } from "./redis-client.js";
import type { ErrorCondition } from "../xmpp/errors.js";
import type { DurableWrites } from "./durable.js";
import { LuaScript } from "./lua.js";
import { STORE_VERSION, type Keys } from "./keys.js";

/**
 * The outbound ledger: a (sender full JID, stanza id) pair is handed to the adapter once, and what became
 * of it is remembered with it for the same TTL. A client that resends after a reconnect (XEP-0198
 * resumption, a retry after a gateway restart) reuses the id: the second copy is not sent, and the sender
 * is answered with what is known (see LedgerState). Only a refusal frees the pair for another try.
 *
 * A claim is also recorded as "in flight" until the adapter's send returns. A claim still in flight after
 * the process died (SIGKILL, power loss) is handed to `takeInterrupted` with its state: one still queued
 * inside the process never reached the network and is freed ("not sent, send again"); one handed to the
 * network may or may not have arrived and is kept (never repeated, never forgotten).
 */
export interface InFlight {
  v: number;
  instance: string;
  adapter: string;
  /** Sender full JID and stanza id: where the error goes and which message it is about. */
  from: string;
  id: string;
  /** The contact JID the message was for. */
  to: string;
}

/**
 * What the ledger knows of a message:
 * - `queued`: claimed, still inside the gateway (the adapter has not handed it to the network);
 * - `sending`: handed to the network, no outcome yet;
 * - `accepted`: the network took it, a delivery report may follow;
 * - `delivered`: the network confirmed delivery (the receipt was sent);
 * - `maybe`: the network may have taken it (timeout, interrupted): the sender was told `text`;
 * - `failed`: the network reported later that it failed (e.g. Twilio `undelivered`, a bounce);
 * - `unknown`: a marker written before states were recorded: sent, fate not recorded.
 */
export type LedgerState =
  | { state: "queued" | "sending" | "accepted" | "delivered" | "unknown" }
  | { state: "maybe" | "failed"; condition: ErrorCondition; text: string };

/** How a send ended, as the core settles it. */
export type Settlement =
  | { state: "accepted" | "delivered" | "refused" }
  | { state: "maybe"; condition: ErrorCondition; text: string };

export interface Claim {
  /** The adapter is handing the message to the network now: from here on a crash leaves its fate unknown. */
  handOff(): Promise<void>;
  /** Whether handOff() completed. */
  readonly handedOff: boolean;
  /** The send returned: a refusal frees the pair, anything else is kept with its state. */
  settle(outcome: Settlement): Promise<void>;
}

/** A claim older than this is interrupted whoever holds it: no send takes an hour (relay retries included). */
export const STALE_IN_FLIGHT_MS = 60 * 60 * 1000;
/** How long an instance counts as alive after its last heartbeat (it beats every third of this). */
export const INSTANCE_LEASE_MS = 90_000;
/**
 * Outcomes kept in memory to record again after the store failed to take them. Beyond this the oldest is
 * dropped: its claim stays in flight and is reported as interrupted (a false alarm, never a second send).
 */
export const MAX_UNSETTLED = 10_000;

const encode = (s: LedgerState): string => JSON.stringify({ v: STORE_VERSION, ...s });
const QUEUED = encode({ state: "queued" });
const SENDING = encode({ state: "sending" });

/** Reads a stored state; the plain "1" of earlier releases (and anything unreadable) is `unknown`. */
export function decodeState(raw: string | null): LedgerState | null {
  if (raw === null) return null;
  try {
    const value = JSON.parse(raw) as Partial<{ state: string; condition: ErrorCondition; text: string }>;
    switch (value.state) {
      case "queued":
      case "sending":
      case "accepted":
      case "delivered":
        return { state: value.state };
      case "maybe":
      case "failed":
        if (typeof value.condition === "string" && typeof value.text === "string")
          return { state: value.state, condition: value.condition, text: value.text };
    }
  } catch {
    // fall through: an old or damaged marker still means "already claimed"
  }
  return { state: "unknown" };
}

// KEYS[1] seen marker, KEYS[2] in-flight set; ARGV: ttl seconds, now ms, member, queued value.
// Returns 1 when claimed, else the state already recorded.
const CLAIM = new LuaScript(`
if redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[1], 'NX') then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return redis.call('GET', KEYS[1]) or ''`);

// KEYS[1] seen marker; ARGV: expected value, new value. Changes the state only from the expected one.
const TRANSITION = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0`);

// KEYS[1] seen marker, KEYS[2] in-flight set; ARGV: member, new value ('' deletes), then the values the
// marker may change from (a report that arrived first, e.g. a fast delivery receipt, is never overwritten).
const SETTLE = new LuaScript(`
local current = redis.call('GET', KEYS[1])
for i = 3, #ARGV do
  if current == ARGV[i] then
    if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') end
    break
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`);

// KEYS[1] seen marker; ARGV: new value. Only a pair still remembered is updated.
const REPORT = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  return 1
end
return 0`);

export type ClaimResult = { claim: Claim } | { previous: LedgerState };

/** What the interrupted sweep tells the sender, by the state the message was left in. */
export interface Interrupted {
  entry: InFlight;
  /** Claim time (ms): tells two claims of the same id apart. */
  since: number;
  /** False when the message was still queued inside the gateway: it never reached the network. */
  handedOff: boolean;
}

export class OutboundLedger {
  /** Settlements the store failed to take, retried before the next claim and at each sweep. */
  private unsettled: (() => Promise<unknown>)[] = [];

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly ttlSeconds: number,
    private readonly instanceId: string,
    /**
     * Where the claim and the hand-off are written: replicated before they resolve when the config asks for
     * replicas, so a failover cannot forget that a message left and let a resend go out again.
     */
    private readonly writes: Pick<DurableWrites, "eval"> = {
      eval: (script, keys, args) => script.run(redis, keys, args),
    },
  ) {}

  /** Claims the pair; when it was already claimed within the TTL, returns what is known of it. */
  async claim(adapter: string, fullJid: string, stanzaId: string, to: string): Promise<ClaimResult> {
    const seen = this.keys.outboundSeen(adapter, fullJid, stanzaId);
    const inFlight = this.keys.outboundInFlight(adapter);
    const entry: InFlight = {
      v: STORE_VERSION,
      instance: this.instanceId,
      adapter,
      from: fullJid,
      id: stanzaId,
      to,
    };
    const member = JSON.stringify(entry);
    if (this.unsettled.length > 0) void this.retryUnsettled();
    const result = await this.writes.eval(
      CLAIM,
      [seen, inFlight],
      [String(this.ttlSeconds), String(Date.now()), member, QUEUED],
    );
    if (result !== 1)
      return { previous: decodeState(typeof result === "string" ? result : null) ?? { state: "unknown" } };
    const redis = this.redis;
    const writes = this.writes;
    let handedOff = false;
    return {
      claim: {
        get handedOff() {
          return handedOff;
        },
        async handOff() {
          if (handedOff) return;
          await writes.eval(TRANSITION, [seen], [QUEUED, SENDING]);
          handedOff = true;
        },
        settle: async (outcome) => {
          const value =
            outcome.state === "refused"
              ? ""
              : encode(outcome.state === "maybe" ? outcome : { state: outcome.state });
          const write = () => SETTLE.run(redis, [seen, inFlight], [member, value, QUEUED, SENDING]);
          try {
            await write();
          } catch (err) {
            this.unsettled.push(write);
            if (this.unsettled.length > MAX_UNSETTLED) this.unsettled.shift();
            throw err;
          }
        },
      },
    };
  }

  /** Records again the outcomes the store failed to take; those failing again are kept for later. */
  async retryUnsettled(): Promise<void> {
    const pending = this.unsettled;
    this.unsettled = [];
    for (const [i, write] of pending.entries()) {
      try {
        await write();
      } catch {
        this.unsettled.unshift(...pending.slice(i));
        return;
      }
    }
  }

  /** What is recorded for a pair (null when nothing is). */
  async state(adapter: string, fullJid: string, stanzaId: string): Promise<LedgerState | null> {
    return decodeState(await this.redis.get(this.keys.outboundSeen(adapter, fullJid, stanzaId)));
  }

  /**
   * A later report from the network about a pair still remembered: delivered (a receipt) or failed (an
   * error). Pairs the ledger does not know are left alone.
   */
  async report(adapter: string, fullJid: string, stanzaId: string, state: LedgerState): Promise<void> {
    await REPORT.run(this.redis, [this.keys.outboundSeen(adapter, fullJid, stanzaId)], [encode(state)]);
  }

  /** Marks this instance alive for INSTANCE_LEASE_MS: its claims in flight are its own to finish. */
  async heartbeat(): Promise<void> {
    await this.redis.set(this.keys.instanceAlive(this.instanceId), "1", "PX", INSTANCE_LEASE_MS);
  }

  /**
   * Claims whose send was interrupted: this instance's own from before `startedAt` (it was killed mid-send),
   * those of an instance whose heartbeat stopped, and any older than STALE_IN_FLIGHT_MS. `report` must
   * durably tell the sender and returns the error it told for one handed to the network; the entry is
   * settled only after it resolves, so a crash here reports again rather than never (the caller
   * deduplicates the report). One still queued is freed, so the same id may be sent again; one handed off
   * is kept with the error, so a resend gets the same answer.
   */
  async takeInterrupted(
    adapter: string,
    report: (interrupted: Interrupted) => Promise<{ condition: ErrorCondition; text: string }>,
    opts: { startedAt: number; now?: number },
  ): Promise<number> {
    await this.retryUnsettled();
    const now = opts.now ?? Date.now();
    const key = this.keys.outboundInFlight(adapter);
    const members = await this.redis.zrange(key, "0", "-1", "WITHSCORES");
    const alive = new Map<string, boolean>();
    const isAlive = async (instance: string): Promise<boolean> => {
      let known = alive.get(instance);
      if (known === undefined) {
        known = (await this.redis.exists(this.keys.instanceAlive(instance))) === 1;
        alive.set(instance, known);
      }
      return known;
    };
    let taken = 0;
    for (let i = 0; i + 1 < members.length; i += 2) {
      const member = members[i] ?? "";
      const since = Number(members[i + 1]);
      let entry: InFlight;
      try {
        entry = JSON.parse(member) as InFlight;
      } catch {
        await this.redis.zrem(key, member);
        continue;
      }
      const interrupted =
        now - since >= STALE_IN_FLIGHT_MS ||
        (entry.instance === this.instanceId ? since < opts.startedAt : !(await isAlive(entry.instance)));
      if (!interrupted) continue;
      const seen = this.keys.outboundSeen(adapter, entry.from, entry.id);
      const raw = await this.redis.get(seen);
      const known = decodeState(raw)?.state;
      // A report that came before the crash (e.g. a fast receipt) already told the sender.
      if (known === "accepted" || known === "delivered" || known === "failed" || known === "maybe") {
        await this.redis.zrem(key, member);
        continue;
      }
      // Only a claim known to be still queued is "not sent"; anything else (handed off, an old marker, a
      // marker gone) may have reached the network.
      const handedOff = known !== "queued";
      const told = await report({ entry, since, handedOff });
      const after = handedOff ? encode({ state: "maybe", ...told }) : "";
      // Changes the marker only if it is still what was read (a missing one is not recreated).
      await SETTLE.run(this.redis, [seen, key], [member, after, ...(raw === null ? [] : [raw])]);
      taken++;
    }
    return taken;
  }
}
