/**
 * Redis losing its data (FLUSHALL, a restart without persistence, a failover to an empty replica) under
 * traffic: the gateway re-creates what it keeps in Redis by itself and inbound messages reach the user
 * again, without a restart; its log stays JSON while Redis is away; and /readyz says when a domain's
 * delivery is stuck. These tests empty and restart Redis and the XMPP server, so they run on a private
 * Prosody and Redis (without persistence) instead of the shared bed.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProsody } from "../bed/prosody.js";
import { startRedis } from "../bed/redis.js";
import type { RedisPeer, XmppPeer } from "../bed/index.js";
import { TEST_SECRET, slotDomain } from "../slots.js";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { Keys } from "../../src/store/keys.js";

const chat = (to: string, id: string, body: string) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body));

describe("Redis data loss", () => {
  let dir: string;
  let prosody: XmppPeer;
  let redis: RedisPeer;
  let raw: Redis;
  let slot: number;
  let domain: string;
  const gateways: GatewayProcess[] = [];
  const users: TestUser[] = [];

  async function gateway(name: string, extra: Record<string, unknown> = {}) {
    const config = testConfig({
      peer: prosody,
      redisUrl: redis.url,
      slot,
      keyPrefix: `loss-${name}:`,
      instanceId: `loss-${name}`,
      echo: { requireRegistration: false },
      admins: [`lossadmin-${slot}@localhost`],
    });
    const gw = await spawnGateway({
      dir,
      name,
      config: { ...config, ...extra },
      env: { TEST_ECHO_SECRET: TEST_SECRET },
    });
    gateways.push(gw);
    await gw.waitLog("component stream online", { timeoutMs: 30_000 });
    return gw;
  }

  async function user(name: string) {
    const u = await TestUser.login(prosody, `${name}-${slot}`);
    users.push(u);
    return u;
  }

  const readyz = async (gw: GatewayProcess) => {
    const answer = await fetch(`http://127.0.0.1:${gw.privatePort}/readyz`);
    return { status: answer.status, ...((await answer.json()) as { checks: Record<string, string> }) };
  };

  beforeAll(async () => {
    slot = await takeSlot(sharedBed());
    domain = slotDomain(slot, "echo");
    dir = await mkdtemp(path.join(tmpdir(), "gw-redis-loss-"));
    [prosody, redis] = await Promise.all([
      startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: [{ domain, secret: TEST_SECRET }],
      }),
      startRedis({ dir: path.join(dir, "redis"), appendOnly: false }),
    ]);
    raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    raw.on("error", () => undefined); // the test restarts Redis
  });

  afterAll(async () => {
    raw?.disconnect();
    await Promise.all(users.map((u) => u.stop()));
    await Promise.all(gateways.map((g) => g.kill("SIGTERM")));
    await Promise.all([prosody?.stop(), redis?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  it("delivers again after FLUSHALL and a Redis restart without persistence, without a gateway restart, and logs only JSON", async () => {
    const gw = await gateway("flush");
    const alice = await user("alice");
    const echoed = (id: string) =>
      alice.waitFor((el) => el.attrs.id === `echo-${id}` && el.getChildText("body") === id, 30_000);

    await alice.send(chat(`bot@${domain}`, "before", "before"));
    await echoed("before");

    const admin = await user("lossadmin");

    // Everything the gateway keeps in Redis is gone: the consumer group, the instance lease, the heartbeat.
    await raw.flushall();
    await alice.send(chat(`bot@${domain}`, "after-flush", "after-flush"));
    await echoed("after-flush");
    // What the inbox held is gone with it: the admins are told, not just the log.
    const notice = await admin.waitFor(
      (el) => el.name === "message" && /Redis lost the delivery queue/.test(el.getChildText("body") ?? ""),
      30_000,
    );
    expect(notice.attrs.from).toBe(domain);
    // The instance id's lease is written again by its renewal.
    const lease = new Keys("loss-flush:").instanceLease("loss-flush");
    await expect.poll(() => raw.exists(lease), { timeout: 20_000 }).toBe(1);

    // Redis restarts empty (no persistence). While it is away, the gateway says so in JSON lines only.
    await redis.stop();
    await gw.waitLog("redis connection error", { where: (l) => l.client === "deliverer" });
    await gw.waitLog("redis connection error", { where: (l) => l.client === "main" });
    await redis.start();
    // Until the gateway's connection is back, a message is answered "try again": the user does so.
    let tries = 0;
    await expect
      .poll(
        async () => {
          const id = `after-restart-${++tries}`;
          await alice.send(chat(`bot@${domain}`, id, id));
          const answer = await alice.waitFor((el) => el.attrs.id === id || el.attrs.id === `echo-${id}`);
          return answer.attrs.type === "error" ? "try again" : "echoed";
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe("echoed");
    await expect.poll(async () => (await readyz(gw)).status, { timeout: 20_000 }).toBe(200);

    await gw.kill("SIGTERM");
    // stdout and stderr both go to the log file: every line must be a JSON object.
    const lines = (await readFile(path.join(dir, "flush.log"), "utf8")).split("\n").filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(5);
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== "object";
      } catch {
        return true;
      }
    });
    expect(notJson).toEqual([]);
  }, 120_000);

  it("reports a domain whose delivery is stuck on /readyz, and ready again once it flows", async () => {
    await Promise.all(gateways.map((g) => g.kill("SIGTERM")));
    const gw = await gateway("stuck", { delivery: { stuckAfterSeconds: 5 } });
    const bob = await user("bob");
    expect((await readyz(gw)).status).toBe(200);
    await bob.stop(); // Bob goes away; he will come back once the server is up again.
    await prosody.stop(); // the component stream cannot deliver
    // A message persisted while the stream is down: it waits in the inbox.
    await raw.xadd(
      new Keys("loss-stuck:").inbox(domain),
      "*",
      "v",
      "1",
      "e",
      JSON.stringify({ kind: "message", to: bob.bare, from: `bot@${domain}`, id: "stuck-1", body: "late" }),
    );
    await expect
      .poll(async () => (await readyz(gw)).checks[`delivery:echo`] ?? "", { timeout: 30_000 })
      .toMatch(new RegExp(`^stuck: the oldest inbound message for ${domain} has waited \\d+ s`));
    expect((await readyz(gw)).status).toBe(503);

    await prosody.start();
    await expect.poll(async () => (await readyz(gw)).status, { timeout: 30_000 }).toBe(200);
    expect((await readyz(gw)).checks["delivery:echo"]).toBe("ok");
    const again = await user("bob"); // the message waits in offline storage or arrives live
    await again.waitFor((el) => el.attrs.id === "stuck-1", 20_000);
  }, 120_000);
});
