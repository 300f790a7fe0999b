/**
 * Behind ejabberd's `domain_balancing`, which slot (if any) a component connection holds, and an address
 * whose answers come back on it.
 *
 * What ejabberd 23.01 does (read in ejabberd_router.erl and ejabberd_router_mnesia.erl of Debian's package,
 * and measured on it, test/e2e/balancing.test.ts):
 * - `component_number: N` makes N route records ("slots", local_hint 1…N) for the domain when the first
 *   connection authenticates; each connection that authenticates later takes one free slot (a record whose
 *   pid is undefined). With every slot taken, a connection is accepted but gets no slot and no traffic, and
 *   it never gets one later: slots are only handed out when a stream authenticates.
 * - A stanza to the domain goes to slot `erlang:phash2(key, N)` of the N records sorted by slot number, the
 *   key being the sender's bare JID with `type: bare_source`; whether or not a connection holds that slot
 *   (an empty slot drops the stanza without an error).
 * - A closed connection (closed by the gateway, or by the kernel after a SIGKILL) frees its slot at once: a
 *   connection that authenticates right after `stop()` returned takes it (measured: 11 ms later).
 *
 * So a ping to the server is answered from the server's domain, and that answer goes to the one slot the
 * server's domain hashes to: on every other instance, keepalive and delivery barrier pings are never answered.
 * A ping to a bare JID on the server is answered by the server from that JID, so its answer goes to the slot
 * that JID hashes to. Pinging a few candidate JIDs and keeping one whose answer came back on this connection
 * gives a barrier address for this slot; when none comes back, the connection holds no slot.
 */
import type { Component } from "@xmpp/component";
import { iq, ping } from "./stanzas.js";

/**
 * Candidates pinged in each round: with N slots, each lands on this connection's slot with chance 1/N. The
 * first round finds a slot of 2 to 10 almost always; the second (224 more, 256 in all) misses a slot of 10
 * with odds of 2e-12, of 50 with 0.6 %. No slot is known after both rounds time out.
 */
export const SLOT_PROBE_ROUNDS = [32, 224] as const;
/** How long a candidate's answer may take (they come in milliseconds on a live server). */
export const SLOT_PROBE_TIMEOUT_MS = 5_000;

/** The localpart of candidate `k`: no account is needed, the server answers for a bare JID itself. */
export const slotCandidate = (k: number, serverDomain: string): string => `xgw-slot-${k}@${serverDomain}`;

/**
 * Pings candidate JIDs on `serverDomain` until one is answered on `entity`'s connection (a result or an
 * error both prove the answer came back here). Returns that JID, or undefined when no answer came back: the
 * connection holds no slot.
 */
export async function probeSlot(entity: Component, serverDomain: string): Promise<string | undefined> {
  let first = 0;
  for (const size of SLOT_PROBE_ROUNDS) {
    const candidates = Array.from({ length: size }, (_, i) => slotCandidate(first + i, serverDomain));
    first += size;
    const found = await Promise.any(
      candidates.map(async (to) => {
        try {
          await entity.iqCaller.request(iq({ type: "get", to }, ping()), SLOT_PROBE_TIMEOUT_MS);
        } catch (err) {
          if ((err as { name?: string }).name !== "StanzaError") throw err;
        }
        return to;
      }),
    ).catch(() => undefined);
    if (found) return found;
  }
  return undefined;
}
