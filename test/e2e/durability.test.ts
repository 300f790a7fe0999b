/**
 * Nothing lost, nothing sent twice: server restarts, a gateway crash, Redis down. These tests restart
 * servers, so they run on a private Prosody and Redis instead of the shared bed.
 */
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProsody } from "../bed/prosody.js";
import { startRedis } from "../bed/redis.js";
import type { RedisPeer, XmppPeer } from "../bed/index.js";
import { TEST_SECRET, slotDomain } from "../slots.js";
import { errorOf, TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { InboxUnavailableError, DELIVERY_GROUP } from "../../src/delivery/inbox.js";
import { Keys } from "../../src/store/keys.js";

const chat = (to: string, id: string, body: string) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body));

describe("durable delivery and restarts", () => {
  let dir: string;
  let prosody: XmppPeer;
  let redis: RedisPeer;
  let slot: number;
  let domain: string;
  const running: TestGateway[] = [];
  const users: TestUser[] = [];

  async function gateway(opts: { keyPrefix?: string; instanceId?: string; waitOnline?: boolean } = {}) {
    const gw = await startTestGateway({
      peer: prosody,
      redisUrl: redis.url,
      slot,
      echo: { requireRegistration: false },
      logDir: dir,
      ...opts,
    });
    running.push(gw);
    return gw;
  }

  async function user(name: string) {
    const u = await TestUser.login(prosody, `${name}-${slot}`);
    users.push(u);
    return u;
  }

  beforeAll(async () => {
    slot = await takeSlot(sharedBed());
    domain = slotDomain(slot, "echo");
    dir = await mkdtemp(path.join(tmpdir(), "gw-durability-"));
    [prosody, redis] = await Promise.all([
      startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: [{ domain, secret: TEST_SECRET }],
      }),
      startRedis({ dir: path.join(dir, "redis"), appendOnly: true }),
    ]);
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await Promise.all(running.map((g) => g.stop().catch(() => undefined)));
    await Promise.all([prosody?.stop(), redis?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  it("reconnects by itself after the XMPP server restarts", async () => {
    const gw = await gateway();
    const link = gw.gateway.services.get("echo")!.ctx.link;
    const readyz = () => fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/readyz`);
    expect((await readyz()).status).toBe(200);
    const offline = once(link, "offline");
    await prosody.stop();
    await offline;
    // /readyz tells the truth while the server is away.
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({
      ready: false,
      checks: { "xmpp:echo": "component stream down" },
    });
    await prosody.start();
    await link.waitOnline(AbortSignal.timeout(20_000));
    expect(link.reconnects).toBe(1);
    expect((await readyz()).status).toBe(200);

    const bob = await user("bob");
    await bob.send(chat(`bot@${domain}`, "after-restart", "are you back?"));
    await bob.waitFor(
      (el) => el.getChildText("body") === "are you back?" && el.attrs.from === `bot@${domain}`,
    );
    await gw.stop();
  });

  it("delivers what arrived while the XMPP server was down, exactly once, after it returns", async () => {
    const gw = await gateway();
    const service = gw.gateway.services.get("echo")!;
    const carol = await user("carol");
    const offline = once(service.ctx.link, "offline");
    await prosody.stop();
    await offline;
    await carol.stop();

    const ctx = service.adapterContext();
    const event = {
      kind: "message",
      to: carol.bare,
      from: `bot@${domain}`,
      id: "durable-1",
      body: "queued while down",
    } as const;
    expect(await ctx.deliver(event, { dedupeId: "net-1" })).toBe(true);
    // The network retrying the same message (a webhook redelivered) is recognised.
    expect(await ctx.deliver(event, { dedupeId: "net-1" })).toBe(false);

    await prosody.start();
    await service.ctx.link.waitOnline(AbortSignal.timeout(20_000));
    const again = await user("carol"); // the message waits for her in offline storage or arrives live
    await again.waitFor((el) => el.attrs.id === "durable-1");
    await expect.poll(() => gw.gateway.inbox.depth(domain), { timeout: 10_000 }).toBe(0);
    await again.sync();
    expect(again.received.filter((el) => el.attrs.id === "durable-1")).toHaveLength(1);
    expect(again.received.find((el) => el.attrs.id === "durable-1")?.getChildText("body")).toBe(
      "queued while down",
    );
    await gw.stop();
  });

  it("resends what a crashed instance had read but not confirmed, with the same stanza id", async () => {
    const dave = await user("dave");
    const keyPrefix = `crash-${slot}:`;
    const keys = new Keys(keyPrefix);
    const raw = new Redis(redis.url);
    try {
      // The state a crash leaves behind: an entry read by instance "crashed" (pending), never acknowledged.
      const stream = keys.inbox(domain);
      await raw.xgroup("CREATE", stream, DELIVERY_GROUP, "0", "MKSTREAM");
      const event = {
        kind: "message",
        to: dave.bare,
        from: `bot@${domain}`,
        id: "crash-1",
        body: "in flight",
      };
      await raw.xadd(stream, "*", "v", "1", "e", JSON.stringify(event));
      await raw.xreadgroup("GROUP", DELIVERY_GROUP, "crashed", "COUNT", 10, "STREAMS", stream, ">");
      expect(await raw.xlen(stream)).toBe(1);

      const gw = await gateway({ keyPrefix, instanceId: "crashed" });
      const got = await dave.waitFor((el) => el.attrs.id === "crash-1");
      expect(got.getChildText("body")).toBe("in flight");
      await expect.poll(() => raw.xlen(stream), { timeout: 10_000 }).toBe(0);
      await gw.stop();
    } finally {
      raw.disconnect();
    }
  });

  it("does not hand a resent outbound message on twice, even after a gateway restart", async () => {
    const erin = await user("erin");
    const keyPrefix = `once-${slot}:`;
    const first = await gateway({ keyPrefix });
    await erin.send(chat(`bot@${domain}`, "once-1", "only once"));
    await erin.waitFor((el) => el.getChildText("body") === "only once");
    await first.stop();

    await gateway({ keyPrefix });
    await erin.send(chat(`bot@${domain}`, "once-1", "only once"));
    await erin.send(chat(`bot@${domain}`, "once-2", "a new one"));
    await erin.waitFor((el) => el.getChildText("body") === "a new one");
    await erin.sync();
    expect(erin.received.filter((el) => el.getChildText("body") === "only once")).toHaveLength(1);
  });

  it("answers 'try later' while Redis is down, stays up, and recovers by itself", async () => {
    const gw = running.at(-1)!;
    const service = gw.gateway.services.get("echo")!;
    const frank = await user("frank");
    await redis.stop();
    const event = {
      kind: "message",
      to: frank.bare,
      from: `bot@${domain}`,
      id: "redis-1",
      body: "after the outage",
    } as const;
    await expect(service.adapterContext().deliver(event)).rejects.toBeInstanceOf(InboxUnavailableError);

    // The XMPP side still answers, and says plainly why a message cannot go out now.
    const pong = await frank.iq("get", domain, xml("ping", { xmlns: "urn:xmpp:ping" }));
    expect(pong.attrs.type).toBe("result");
    await frank.send(chat(`bot@${domain}`, "during-outage", "hello?"));
    const refused = await frank.waitFor((el) => el.attrs.id === "during-outage");
    expect(errorOf(refused)).toMatchObject({ condition: "internal-server-error", type: "wait" });
    expect(errorOf(refused).text).toContain("Try again");

    const readyz = await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { checks: { redis: string } }).checks.redis).toBe("unreachable");

    await redis.start();
    await expect
      .poll(
        () =>
          service
            .adapterContext()
            .deliver(event)
            .then(
              () => true,
              () => false,
            ),
        { timeout: 20_000, interval: 250 },
      )
      .toBe(true);
    await frank.waitFor((el) => el.attrs.id === "redis-1", 20_000);
    // …and /readyz says so again.
    const again = await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/readyz`);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ ready: true, checks: { redis: "ok", "xmpp:echo": "online" } });
  });
});
