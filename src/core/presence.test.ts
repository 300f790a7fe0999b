/**
 * The gateway's presence broadcast to its registered users, read from the test bed's Redis a batch at a time.
 * The link is a recorder: what is checked is which users get which presence, and when a broadcast stops.
 */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { sharedBed } from "../../test/support/gateway.js";
import { createLogger } from "../log.js";
import { Keys } from "../store/keys.js";
import { Registrations } from "../store/registrations.js";
import type { Element } from "../xmpp/stanzas.js";
import { AccessPolicy } from "./access.js";
import type { ServiceContext } from "./context.js";
import { PRESENCE_SCAN_BATCH, pacingDelayMs, PresenceBroadcaster } from "./presence.js";

const DOMAIN = "echo.example.org";

class RecordingLink {
  isOnline = true;
  readonly sent: Element[] = [];
  onSend: (count: number) => void = () => {};
  send(el: Element): Promise<void> {
    this.sent.push(el);
    this.onSend(this.sent.length);
    return Promise.resolve();
  }
  to(type?: string): string[] {
    return this.sent.filter((el) => el.attrs.type === type).map((el) => String(el.attrs.to));
  }
}

describe("gateway presence broadcast", () => {
  const redis = new Redis(sharedBed().redis!.url);
  afterAll(() => redis.disconnect());
  let run = 0;

  /** A service context over `users` registrations (those on example.org allowed, the others not). */
  async function setup(users: string[]) {
    const keys = new Keys(`presence-test-${process.pid}-${++run}:`);
    const registrations = new Registrations(redis, keys, "echo");
    const pipeline = redis.pipeline();
    for (const user of users) pipeline.hset(keys.registrations("echo"), user, '{"v":1,"fields":{}}');
    await pipeline.exec();
    const link = new RecordingLink();
    const svc = {
      domain: DOMAIN,
      link,
      log: createLogger({ level: "silent" }),
      access: new AccessPolicy(["example.org"], [], "Echo"),
      registrations,
      capsVer: "ver",
    } as unknown as ServiceContext;
    return { link, svc };
  }

  const allowed = (n: number) => Array.from({ length: n }, (_, i) => `user${i}@example.org`);

  it("paces presences to the configured rate from the broadcast's start", () => {
    expect(pacingDelayMs(0, 1000, 1000, 500)).toBe(0);
    expect(pacingDelayMs(500, 1000, 1000, 500)).toBe(1000);
    expect(pacingDelayMs(500, 1000, 1600, 500)).toBe(400);
    // Behind schedule (a slow send): no wait, and no burst to catch up beyond the rate's schedule.
    expect(pacingDelayMs(10, 1000, 5000, 500)).toBe(0);
  });

  it("sends its presence once to every allowed registered user, over more than one scan batch", async () => {
    const users = [...allowed(PRESENCE_SCAN_BATCH * 2 + 37), "stranger@elsewhere.net"];
    const { link, svc } = await setup(users);
    const result = await new PresenceBroadcaster(svc, 100_000).run("available");
    expect(result).toEqual({ type: "available", sent: users.length - 1, complete: true });
    const to = link.to(undefined);
    expect(new Set(to).size).toBe(to.length);
    expect(to.sort()).toEqual(allowed(PRESENCE_SCAN_BATCH * 2 + 37).sort());
    expect(link.sent.every((el) => el.attrs.from === DOMAIN)).toBe(true);
  });

  it("stops a broadcast when a newer one starts (the stream came back), and the newer one reaches everybody", async () => {
    const users = allowed(40);
    const { link, svc } = await setup(users);
    const broadcaster = new PresenceBroadcaster(svc, 200);
    let second: Promise<unknown> | undefined;
    link.onSend = (count) => {
      if (count === 5) second = broadcaster.run("available");
    };
    const first = await broadcaster.run("available");
    await second;
    expect(first.complete).toBe(false);
    expect(first.sent).toBeLessThan(users.length);
    expect(new Set(link.to(undefined))).toEqual(new Set(users));
  });

  it("stops when the stream goes down, and when its time budget runs out", async () => {
    const { link, svc } = await setup(allowed(40));
    link.onSend = (count) => {
      if (count === 3) link.isOnline = false;
    };
    expect(await new PresenceBroadcaster(svc, 1_000).run("available")).toEqual({
      type: "available",
      sent: 3,
      complete: false,
    });

    link.isOnline = true;
    link.onSend = () => {};
    // At 5 a second, a 2 s budget cannot reach 40 users.
    const stop = await new PresenceBroadcaster(svc, 5).run("unavailable", 2_000);
    expect(stop.complete).toBe(false);
    expect(stop.sent).toBeGreaterThan(0);
    expect(stop.sent).toBeLessThan(40);
    expect(link.to("unavailable")).toHaveLength(stop.sent);
  });
});
