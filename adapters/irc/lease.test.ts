/** Connection leases between gateway instances, against the test bed's Redis. */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { Keys } from "../../src/store/keys.js";
import { sharedBed } from "../../test/support/gateway.js";
import { Leases } from "./lease.js";

describe("Leases", () => {
  const redis = new Redis(sharedBed().redis!.url);
  const prefix = `lease-test-${process.pid}-${Date.now()}`;
  const key = new Keys(`${prefix}:`).adapterKey("irc");
  afterAll(() => redis.disconnect());

  it("lets one instance hold a user's connection; the other gets it once released", async () => {
    const a = new Leases(redis, key);
    const b = new Leases(redis, key);
    expect(a.owner).not.toBe(b.owner);
    expect(await a.acquire("alice@example.org", "irc.example.net")).toBe(true);
    expect(await a.acquire("alice@example.org", "irc.example.net")).toBe(true); // renewal
    expect(await b.acquire("alice@example.org", "irc.example.net")).toBe(false);
    expect(await b.acquire("bob@example.org", "irc.example.net")).toBe(true);
    await b.release("alice@example.org", "irc.example.net"); // not b's: no effect
    expect(await a.holder("alice@example.org", "irc.example.net")).toBe(a.owner);
    await a.release("alice@example.org", "irc.example.net");
    expect(await b.acquire("alice@example.org", "irc.example.net")).toBe(true);
  });

  it("releases every lease of a dead instance, and only those, for the instance serving its users", async () => {
    const dead = new Leases(redis, key, 30, "dead");
    const live = new Leases(redis, key, 30, "live");
    expect(await dead.acquire("dave@example.org", "irc.example.net")).toBe(true);
    expect(await dead.acquire("dave@example.org", "irc.example.com")).toBe(true);
    expect(await live.acquire("erin@example.org", "irc.example.net")).toBe(true);
    expect(await live.acquire("dave@example.org", "irc.example.net")).toBe(false);
    const freed = await live.releaseHeldBy("dead");
    expect(freed.toSorted((x, y) => x.server.localeCompare(y.server))).toEqual([
      { user: "dave@example.org", server: "irc.example.com" },
      { user: "dave@example.org", server: "irc.example.net" },
    ]);
    expect(await live.acquire("dave@example.org", "irc.example.net")).toBe(true);
    expect(await live.holder("erin@example.org", "irc.example.net")).toBe("live");
    expect(await live.releaseHeldBy("dead")).toEqual([]);
  });

  it("expires a lease nobody renews (a crashed instance)", async () => {
    const crashed = new Leases(redis, key, 1);
    expect(await crashed.acquire("carol@example.org", "irc.example.net")).toBe(true);
    expect(await redis.ttl(key("lease", "carol@example.org", "irc.example.net"))).toBeGreaterThan(0);
  });
});
