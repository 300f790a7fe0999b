/**
 * The fault suite: steady mixed traffic through the gateway while, in turn, the gateway is killed with
 * SIGKILL and restarted, the XMPP server restarts, Redis restarts (AOF on, as docs/deployment.md asks), and
 * the Twilio-compatible API answers 500s and then hangs. Afterwards it counts, and names what went wrong:
 * - every inbound message the network was told was stored (webhook answered 200) reached its user;
 * - no SMS was sent twice;
 * - every outbound message either went out or its sender got an error for it.
 * Runs on private servers (it restarts them). Recovery times are printed, not asserted (see bench/).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type RedisPeer, type XmppPeer } from "../bed/index.js";
import { startProsody } from "../bed/prosody.js";
import { startRedis } from "../bed/redis.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { registration, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";

const ACCOUNT = "AC" + "6".repeat(32);
const TOKEN = "fault-token";
const USERS = 4;
/** Each user's dedicated number, and the phone each one texts with. */
const number = (i: number) => `+1202555070${i}`;
const phone = (i: number) => `+1202555071${i}`;
/** Pause between two messages of one traffic loop: 2 loops × USERS users ≈ 40 messages/s in all. */
const TRAFFIC_GAP_MS = 200;
/** How long the suite waits after the last fault for stragglers (redelivery, retries). */
const SETTLE_TIMEOUT_MS = 60_000;

interface Outbound {
  user: number;
  id: string;
  body: string;
}

describe("fault suite", () => {
  let dir: string;
  let prosody: XmppPeer;
  let redis: RedisPeer;
  let fake: TwilioFake;
  let gateway: GatewayProcess | undefined;
  let config: ReturnType<typeof testConfig>;
  /** Fixed across restarts, like a production gateway's (Twilio keeps calling the same URL). */
  let httpPort: number;
  let smsDomain: string;
  let echoDomain: string;
  const users: TestUser[] = [];
  const recovery: Record<string, number> = {};

  let starts = 0;
  const startGateway = async () => {
    gateway = await spawnGateway({
      dir,
      name: `gateway-${++starts}`,
      config,
      env: { TEST_ECHO_SECRET: TEST_SECRET, TOKEN },
      httpPort,
    });
  };

  beforeAll(async () => {
    const slot = await takeSlot(sharedBed());
    smsDomain = slotDomain(slot, "sms");
    echoDomain = slotDomain(slot, "echo");
    dir = await mkdtemp(path.join(tmpdir(), "gw-faults-"));
    [prosody, redis, fake] = await Promise.all([
      startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: [
          { domain: smsDomain, secret: TEST_SECRET },
          { domain: echoDomain, secret: TEST_SECRET },
        ],
      }),
      startRedis({ dir: path.join(dir, "redis"), appendOnly: true }),
      startTwilioFake({
        accountSid: ACCOUNT,
        authToken: TOKEN,
        numbers: Array.from({ length: USERS }, (_, i) => number(i)),
      }),
    ]);
    httpPort = await freePort();
    config = testConfig({
      peer: prosody,
      redisUrl: redis.url,
      slot,
      keyPrefix: "faults:",
      echo: { requireRegistration: false },
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url, timeoutSeconds: 2 },
          numbers: {
            dedicated: Object.fromEntries(
              Array.from({ length: USERS }, (_, i) => [number(i), `fault-${i}@${prosody.host}`]),
            ),
          },
          limits: { messagesPerHour: 100_000, segmentsPerDay: 100_000 },
        },
      },
    });
    await startGateway();
    await gateway!.waitLog("component stream online");
    for (let i = 0; i < USERS; i++) {
      const u = await TestUser.login(prosody, `fault-${i}`);
      // Like a real client after a reconnect: roster, then presence (offline messages then flow in).
      u.xmpp.on("online", () => {
        void u
          .iq("get", undefined, xml("query", { xmlns: "jabber:iq:roster" }))
          .then(() => u.send(xml("presence")))
          .catch(() => undefined);
      });
      users.push(u);
      expect((await u.iq("set", smsDomain, registration({ mode: "dedicated" }))).attrs.type).toBe("result");
    }
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gateway?.kill("SIGKILL");
    await Promise.all([prosody?.stop(), redis?.stop(), fake?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  /** Time until an echo round trip works again, as the first user sees it. */
  async function timeToRecover(fault: string, since: number): Promise<void> {
    const u = users[0]!;
    for (let n = 0; ; n++) {
      const id = `probe-${fault}-${n}`;
      try {
        await u.send(xml("message", { to: `probe@${echoDomain}`, id, type: "chat" }, xml("body", {}, id)));
        await u.waitFor(
          (el) => el.name === "message" && el.getChildText("body")?.endsWith(id) === true,
          1_000,
        );
        recovery[fault] = Date.now() - since;
        return;
      } catch {
        if (Date.now() - since > 60_000) throw new Error(`no recovery from "${fault}" within 60 s`);
        await sleep(200);
      }
    }
  }

  it("loses nothing and sends nothing twice through crashes, restarts and a failing provider", async () => {
    const inboundStored: { user: number; body: string }[] = [];
    const inboundRefused: string[] = [];
    const outbound: Outbound[] = [];
    /** True while the XMPP server is being restarted: see the comment where it is set. */
    let xmppQuiet = false;
    let running = true;

    const inboundLoop = async (i: number) => {
      for (let n = 0; running; n++) {
        const body = `in-${i}-${n}`;
        const answer = await fake
          .sendInbound({
            from: phone(i),
            to: number(i),
            body,
            webhookUrl: `http://127.0.0.1:${httpPort}/sms/twilio/sms`,
          })
          .catch((err: Error) => ({ status: 0, error: err.message }));
        if (answer.status === 200) inboundStored.push({ user: i, body });
        else inboundRefused.push(`${body}: ${answer.status}`);
        await sleep(TRAFFIC_GAP_MS);
      }
    };
    const outboundLoop = async (i: number) => {
      const u = users[i]!;
      for (let n = 0; running; n++) {
        await sleep(TRAFFIC_GAP_MS);
        if (xmppQuiet || u.xmpp.status !== "online") continue;
        const id = `out-${i}-${n}`;
        try {
          await u.send(
            xml("message", { to: `${phone(i)}@${smsDomain}`, id, type: "chat" }, xml("body", {}, id)),
          );
          outbound.push({ user: i, id, body: id });
        } catch {
          // Never left the client: the user's own client shows it as not sent.
        }
      }
    };

    const loops = [
      ...Array.from({ length: USERS }, (_, i) => inboundLoop(i)),
      ...Array.from({ length: USERS }, (_, i) => outboundLoop(i)),
    ];
    await sleep(2_000);

    // 1. The gateway dies without a chance to clean up. XEP-0114 has no acknowledgements: stanzas already in
    //    the dead process's socket are gone with it, whatever the gateway does. So outbound traffic pauses a
    //    moment first; what the gateway had accepted is covered by its ledger (test/e2e/crash.test.ts).
    xmppQuiet = true;
    await sleep(500);
    let since = Date.now();
    await gateway!.kill("SIGKILL");
    await sleep(1_000);
    await startGateway();
    xmppQuiet = false;
    await timeToRecover("gateway SIGKILL", since);
    await sleep(2_000);

    // 2. The XMPP server restarts. Messages a client sends into a dying server are the server's to lose (there
    //    is no stream management on this test server), so outbound pauses across the restart.
    xmppQuiet = true;
    await sleep(500);
    since = Date.now();
    await prosody.stop();
    await prosody.start();
    await expect.poll(() => users.every((u) => u.xmpp.status === "online"), { timeout: 30_000 }).toBe(true);
    xmppQuiet = false;
    await timeToRecover("XMPP server restart", since);
    await sleep(2_000);

    // 3. Redis restarts (AOF): webhooks answer 503 meanwhile (Twilio retries), stanzas get "try again".
    since = Date.now();
    await redis.stop();
    await sleep(1_000);
    await redis.start();
    await timeToRecover("Redis restart", since);
    await sleep(2_000);

    // 4. Twilio fails: 500s (retried), then requests left hanging (reported, never repeated).
    since = Date.now();
    fake.fail({ status: 500, times: 10 });
    await sleep(1_500);
    fake.hang(3);
    await sleep(4_000);
    recovery["Twilio 500s and hangs"] = Date.now() - since;

    running = false;
    await Promise.all(loops);

    // Count. Inbound: every stored message reached its user at least once.
    const bodiesOf = (u: TestUser) =>
      new Set(u.received.map((el: Element) => el.getChildText("body") ?? "").filter((b) => b !== ""));
    const missingInbound = () =>
      inboundStored.filter(({ user, body }) => !bodiesOf(users[user]!).has(`${body}`));
    await expect.poll(() => missingInbound().length, { timeout: SETTLE_TIMEOUT_MS, interval: 500 }).toBe(0);

    // Outbound: sent at most once, and either sent or answered with an error.
    const errorIds = (u: TestUser) =>
      new Set(
        u.received
          .filter((el) => el.name === "message" && el.attrs.type === "error")
          .map((el) => el.attrs.id),
      );
    const sentBodies = () => fake.sent().map((m) => m.body);
    const unaccounted = () =>
      outbound.filter((m) => !sentBodies().includes(m.body) && !errorIds(users[m.user]!).has(m.id));
    await expect
      .poll(() => unaccounted().map((m) => m.id), { timeout: SETTLE_TIMEOUT_MS, interval: 500 })
      .toEqual([]);
    const counts = new Map<string, number>();
    for (const body of sentBodies()) counts.set(body, (counts.get(body) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([body]) => body);
    expect(twice, "SMS sent more than once").toEqual([]);

    const errors = users.reduce((sum, u) => sum + errorIds(u).size, 0);
    console.info(
      `fault suite: ${inboundStored.length} inbound stored (${inboundRefused.length} refused and left to the ` +
        `network's retry), ${outbound.length} outbound (${fake.sent().length} sent, ${errors} answered with an ` +
        `error); time to recover: ${Object.entries(recovery)
          .map(([fault, ms]) => `${fault} ${ms} ms`)
          .join(", ")}`,
    );
    expect(inboundStored.length).toBeGreaterThan(USERS * 10);
    expect(outbound.length).toBeGreaterThan(USERS * 10);
  });
});
