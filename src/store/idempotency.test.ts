/** The outbound ledger's states, against the test bed's Redis. */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { sharedBed } from "../../test/support/gateway.js";
import { Keys } from "./keys.js";
import { OutboundLedger, type Interrupted } from "./idempotency.js";

describe("OutboundLedger", () => {
  const redis = new Redis(sharedBed().redis!.url);
  const keys = new Keys(`ledger-test-${process.pid}-${Date.now()}:`);
  const ledger = new OutboundLedger(redis, keys, 3600, "me");
  const from = "alice@example.org/phone";
  afterAll(() => redis.disconnect());

  const claim = async (id: string) => {
    const result = await ledger.claim("sms", from, id, "+15550001@sms.example.org");
    if (!("claim" in result)) throw new Error(`${id} was already claimed`);
    return result.claim;
  };
  const again = (id: string) => ledger.claim("sms", from, id, "+15550001@sms.example.org");

  it("frees a refused id, keeps every other outcome and answers a second claim with it", async () => {
    const refused = await claim("r");
    await refused.handOff();
    await refused.settle({ state: "refused" });
    expect(await ledger.state("sms", from, "r")).toBeNull();
    const reclaimed = await again("r");
    expect("claim" in reclaimed).toBe(true);
    if ("claim" in reclaimed) await reclaimed.claim.settle({ state: "refused" });

    const accepted = await claim("a");
    expect(await again("a")).toEqual({ previous: { state: "queued" } });
    await accepted.handOff();
    expect(accepted.handedOff).toBe(true);
    expect(await again("a")).toEqual({ previous: { state: "sending" } });
    await accepted.settle({ state: "accepted" });
    expect(await again("a")).toEqual({ previous: { state: "accepted" } });

    const maybe = await claim("m");
    await maybe.handOff();
    await maybe.settle({ state: "maybe", condition: "remote-server-timeout", text: "may have" });
    expect(await again("m")).toEqual({
      previous: { state: "maybe", condition: "remote-server-timeout", text: "may have" },
    });
    expect(await redis.zcard(keys.outboundInFlight("sms"))).toBe(0);
    expect(await redis.ttl(keys.outboundSeen("sms", from, "m"))).toBeGreaterThan(3500);
  });

  it("records later reports, never lets the send's own outcome undo one, and ignores unknown ids", async () => {
    const fast = await claim("fast");
    await fast.handOff();
    // The delivery receipt came before the send returned.
    await ledger.report("sms", from, "fast", { state: "delivered" });
    await fast.settle({ state: "accepted" });
    expect(await ledger.state("sms", from, "fast")).toEqual({ state: "delivered" });
    await ledger.report("sms", from, "fast", { state: "failed", condition: "item-not-found", text: "gone" });
    expect(await ledger.state("sms", from, "fast")).toEqual({
      state: "failed",
      condition: "item-not-found",
      text: "gone",
    });
    await ledger.report("sms", from, "never-sent", { state: "delivered" });
    expect(await ledger.state("sms", from, "never-sent")).toBeNull();
    // A marker of an earlier release.
    await redis.set(keys.outboundSeen("sms", from, "old"), "1");
    expect(await again("old")).toEqual({ previous: { state: "unknown" } });
  });

  it("after a crash frees what was still queued and keeps what was on the wire, with the error told", async () => {
    const queued = await claim("q");
    const wire = await claim("w");
    await wire.handOff();
    const answered = await claim("d");
    await answered.handOff();
    await ledger.report("sms", from, "d", { state: "delivered" });
    const told: Interrupted[] = [];
    const taken = await ledger.takeInterrupted(
      "sms",
      (interrupted) => {
        told.push(interrupted);
        return Promise.resolve({ condition: "remote-server-timeout", text: "interrupted" });
      },
      { startedAt: Date.now() + 1 },
    );
    expect(taken).toBe(2);
    expect(told.map((t) => [t.entry.id, t.handedOff]).sort()).toEqual([
      ["q", false],
      ["w", true],
    ]);
    expect(await ledger.state("sms", from, "q")).toBeNull();
    expect(await ledger.state("sms", from, "w")).toEqual({
      state: "maybe",
      condition: "remote-server-timeout",
      text: "interrupted",
    });
    expect(await ledger.state("sms", from, "d")).toEqual({ state: "delivered" });
    expect(await redis.zcard(keys.outboundInFlight("sms"))).toBe(0);
    void queued;
  });
});
