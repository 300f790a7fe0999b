/**
 * Redis Sentinel: the compiled gateway finds its primary through three sentinels and follows a failover by
 * itself. With `redis.replication.minReplicas` 1, a webhook is answered 200 only once a replica has the
 * message (WAIT), so killing the primary (SIGKILL) under traffic loses nothing that was acknowledged.
 *
 * Traffic: SMS webhooks (each retried with its MessageSid until answered 200, as Twilio does) and SMS sent
 * by the user. The primary is killed, a replica promoted; the killed server comes back as a replica (with one
 * replica only, the new primary cannot confirm writes until then: the gateway answers "try later" meanwhile).
 * Every data server keeps an append-only file, as the deployment guide asks: on a busy machine the sentinels
 * may fail over a second time, to the server just restarted, and one that came back empty would wipe the data
 * (a case forces that second failover). A last case checks that a WAIT cut off by the failover never
 * confirms a write the new primary lacks.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pino from "pino";
import { afterEach, expect, it } from "vitest";
import { Inbox } from "../../src/delivery/inbox.js";
import { DurableWrites } from "../../src/store/durable.js";
import { Keys } from "../../src/store/keys.js";
import { createRedis } from "../../src/store/redis-client.js";
import { startProsody } from "../bed/prosody.js";
import { startSentinelGroup } from "../bed/sentinel.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { TestUser, registration, until, xml } from "../support/client.js";
import { ensureDist } from "../support/dist.js";
import { sharedBed, takeSlot } from "../support/gateway.js";
import { spawnGateway } from "../support/process.js";
import { startTwilioFake } from "../twilio/server.js";

const ACCOUNT = "AC" + "5".repeat(32);
const TOKEN = "sentinel-token";
const OWN = "+12025550500";
const CONTACT = "+12025550511";
/** Sends before the kill, and after traffic flows again. */
const STEADY_SENDS = 20;
/** Senders at once while the primary fails. */
const PARALLEL = 4;
/** How long the replica is stopped before the primary is killed (below the sentinels' down-after). */
const BEHIND_MS = 700;
/** How often an unanswered webhook is sent again. */
const RETRY_MS = 200;

const cleanup: (() => Promise<void>)[] = [];
const duplicates = (items: string[]) => items.filter((x, i) => items.indexOf(x) !== i);
/** What a failed test prints about the run, collected before its servers stop. */
let diagnose: (() => Promise<void>) | undefined;
afterEach(async ({ task }) => {
  if (task.result?.state === "fail") await diagnose?.().catch((err: unknown) => console.log(err));
  diagnose = undefined;
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

/**
 * A sentinel group with `replicas` replicas, the compiled gateway on it (replicated acknowledgements: one
 * replica, 500 ms), the Twilio-compatible server and a user registered with a dedicated number.
 */
async function startRun(replicas: number, name: string, opts: { ownXmppServer?: boolean } = {}) {
  ensureDist();
  const bed = sharedBed();
  const slot = await takeSlot(bed);
  const domain = slotDomain(slot, "sms");
  const dir = await mkdtemp(path.join(tmpdir(), "sentinel-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  // A Prosody of its own for a test that stops it (the shared one serves the other files).
  const peer = opts.ownXmppServer
    ? await startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: [{ domain, secret: TEST_SECRET }],
      })
    : bed.prosody!;
  if (opts.ownXmppServer) cleanup.push(() => peer.stop());
  const group = await startSentinelGroup({ dir: path.join(dir, "redis"), replicas });
  cleanup.push(() => group.stop());
  const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  cleanup.push(() => fake.stop());
  const userName = `sentinel-${slot}-${name}`;
  const gw = await spawnGateway({
    dir,
    name: `sentinel-${name}`,
    // Debug: a failure prints what the deliverer did with each batch.
    env: { GW_SECRET: TEST_SECRET, TWILIO_TOKEN: TOKEN, LOG_LEVEL: "debug" },
    config: {
      xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: [peer.host] },
      redis: {
        url: "redis://127.0.0.1:6379",
        sentinels: group.sentinels,
        masterName: group.masterName,
        keyPrefix: `sentinel-${slot}-${name}:`,
        replication: { minReplicas: 1, timeoutMs: 500 },
      },
      adapters: {
        sms: {
          domain,
          secretEnv: "GW_SECRET",
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TWILIO_TOKEN", apiBaseUrl: fake.url },
          numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
        },
      },
    },
  });
  cleanup.push(() => gw.kill("SIGKILL"));
  // A failure says what happened: what the gateway logged about delivery (and its warnings), in order, the
  // user's connection events, and what the inbox holds on the primary now (entries, and who has them).
  let userEvents: string[] = [];
  diagnose = async () => {
    const seen = gw.lines.filter(
      (l) => Number(l.level) >= 40 || /deliver|replica|stored|paused/i.test(String(l.msg)),
    );
    console.log(
      `gateway log (${seen.length} lines):\n${seen
        .slice(-150)
        .map((l) => JSON.stringify(l))
        .join("\n")}\nuser's connection: ${userEvents.join(", ")}`,
    );
    const keys = new Keys(`sentinel-${slot}-${name}:`);
    const now = new Redis({ port: await group.primary(), host: "127.0.0.1", maxRetriesPerRequest: 0 });
    const inbox = keys.inbox(domain);
    const [entries, pending, groups, dead] = await Promise.all([
      now.xrange(inbox, "-", "+"),
      now.xpending(inbox, "deliverers", "-", "+", 100),
      now.xinfo("GROUPS", inbox),
      now.xrange(keys.deadLetters(domain), "-", "+"),
    ]).catch((err: unknown) => [String(err), [], [], []]);
    now.disconnect();
    console.log(`inbox on the primary: ${JSON.stringify({ entries, pending, groups, dead })}`);
  };
  await gw.waitLog("component stream online", { timeoutMs: 30_000 });
  const user = await TestUser.login(peer, userName);
  userEvents = user.events;
  cleanup.push(() => user.stop());
  const reg = await user.iq("set", domain, registration({ mode: "dedicated" }));
  expect(reg.attrs.type).toBe("result");
  const webhookUrl = `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`;

  /** Sends one inbound SMS webhook; its HTTP status (0: no answer). */
  const inbound = (body: string, messageSid: string) =>
    fake
      .sendInbound({ from: CONTACT, to: OWN, body, webhookUrl, messageSid })
      .then((answer) => answer.status)
      .catch(() => 0);
  /** The inbound SMS bodies the user has received. */
  const bodies = () =>
    user.received
      .filter((el) => el.name === "message" && el.attrs.from?.startsWith("+"))
      .map((el) => el.getChildText("body") ?? "");
  return { group, fake, gw, user, userName, peer, domain, inbound, bodies };
}

it.each([
  { replicas: 1, topology: "one replica: the killed primary comes back as a replica" },
  { replicas: 2, topology: "two replicas: the other one follows the promoted primary" },
])(
  "loses no acknowledged message and sends none twice when the Redis primary is killed under traffic ($topology)",
  async ({ replicas }) => {
    const {
      group,
      fake,
      user,
      domain,
      inbound: webhook,
      bodies,
    } = await startRun(replicas, String(replicas));
    // Inbound: each message is sent until answered 200 (Twilio retries what is not), with the same sid.
    const acknowledged: string[] = [];
    let answeredAfterKill: number | undefined;
    let killedAt: number | undefined = undefined;
    let inbound = 0;
    const sendInbound = async (): Promise<void> => {
      const body = `in-${inbound++}`;
      const messageSid = `SM${String(inbound).padStart(32, "0")}`;
      for (;;) {
        if ((await webhook(body, messageSid)) === 200) {
          acknowledged.push(body);
          if (killedAt !== undefined && answeredAfterKill === undefined)
            answeredAfterKill = Date.now() - killedAt;
          return;
        }
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    };
    // Outbound: one SMS per step, each with its own id; errors ("try later") are fine, a second copy is not.
    let outbound = 0;
    const sendOutbound = () =>
      user.send(
        xml(
          "message",
          { to: `${CONTACT}@${domain}`, id: `out-${outbound}`, type: "chat" },
          xml("body", {}, `out-${outbound++}`),
        ),
      );

    for (let i = 0; i < STEADY_SENDS; i++) await Promise.all([sendInbound(), sendOutbound()]);

    // The replica falls behind (stopped), so what the primary takes now exists nowhere else; the primary is
    // then killed and the replica, running again, promoted. Without replicated acknowledgements, whatever was
    // answered 200 in between is gone.
    const primary = await group.primary();
    const behind = group.servers.filter((port) => port !== primary);
    for (const port of behind) await group.pause(port);
    const during = Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (answeredAfterKill === undefined) await Promise.all([sendInbound(), sendOutbound()]);
      }),
    );
    await new Promise((r) => setTimeout(r, BEHIND_MS));
    killedAt = Date.now();
    await group.kill(primary);
    for (const port of behind) await group.resume(port);
    const promoted = await group.failedOver(primary);
    // With one replica, the new primary has none until the old one is back: writes wait (try later) till then.
    if (replicas === 1) await group.restart(primary);
    await during;
    for (let i = 0; i < STEADY_SENDS; i++) await Promise.all([sendInbound(), sendOutbound()]);
    console.log(
      `sentinel failover (${replicas} replicas): primary ${primary} killed, ${promoted} promoted; first webhook taken again ` +
        `${answeredAfterKill} ms after the kill; ${acknowledged.length} acknowledged, ${outbound} SMS asked for`,
    );

    // Every acknowledged message reaches the user, once.
    await until(
      () => acknowledged.every((b) => bodies().includes(b)),
      60_000,
      () => `lost: ${acknowledged.filter((b) => !bodies().includes(b)).join(", ")}`,
    );
    const received = bodies().filter((b) => b.startsWith("in-"));
    expect(duplicates(received), "messages delivered twice").toEqual([]);
    // No SMS went out twice, whatever each send's outcome was.
    await fake.idle();
    const sent = fake.sent().map((m) => m.body);
    expect(duplicates(sent), "SMS sent twice").toEqual([]);
    expect(sent.length).toBeGreaterThan(0);
  },
  // A failover takes seconds (18 s with one replica on an idle machine) and waits up to a minute for traffic.
  180_000,
);

it("loses nothing acknowledged when the sentinels fail over twice, the second time to the server just restarted", async () => {
  // Messages are taken (200) while the XMPP server is down, so they wait in the inbox. The primary is killed
  // and restarted at once; then the new primary stops answering, and the sentinels promote the restarted one,
  // whose data is what it had on disk; the other copies it. Without an append-only file it would come back
  // empty and the copy would wipe the messages.
  const { group, gw, userName, peer, inbound } = await startRun(1, "twice", { ownXmppServer: true });
  await peer.stop();
  await gw.waitLog("component stream lost", { timeoutMs: 30_000 });
  const held = Array.from({ length: 10 }, (_, i) => `held-${i}`);
  for (const [i, body] of held.entries())
    expect(await inbound(body, `SM${String(100 + i).padStart(32, "0")}`)).toBe(200);

  const first = await group.primary();
  await group.kill(first);
  const second = await group.failedOver(first);
  await group.restart(first);
  await group.pause(second);
  const third = await group.failedOver(second, 90_000);
  await group.resume(second);
  expect(third, "the sentinels promoted the restarted server").toBe(first);
  await expect.poll(() => group.replicas(), { timeout: 60_000 }).toBeGreaterThanOrEqual(1);

  await peer.start();
  const again = await TestUser.login(peer, userName);
  cleanup.push(() => again.stop());
  const bodies = () =>
    again.received.filter((el) => el.name === "message").map((el) => el.getChildText("body") ?? "");
  await until(
    () => held.every((b) => bodies().includes(b)),
    60_000,
    () => `lost: ${held.filter((b) => !bodies().includes(b)).join(", ")}`,
  );
}, 240_000);

it("does not count a write as replicated when the primary dies while its WAIT is under way", async () => {
  // The write reaches the primary, its replicas are stopped so WAIT waits; the primary is killed and a
  // replica promoted, the other following it. The WAIT must not be sent again on the connection to the new
  // primary, which would answer for writes that never reached it: the write is reported as failed (the
  // network tries again), not acknowledged and lost.
  const dir = await mkdtemp(path.join(tmpdir(), "sentinel-wait-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const group = await startSentinelGroup({ dir: path.join(dir, "redis"), replicas: 2 });
  cleanup.push(() => group.stop());
  const log = pino({ level: "silent" });
  const redis = createRedis(
    { sentinels: group.sentinels, masterName: group.masterName },
    { maxRetriesPerRequest: null },
    log,
    "main",
  );
  const durable = new DurableWrites(redis, { minReplicas: 1, timeoutMs: 20_000 }, log);
  cleanup.push(() => {
    durable.disconnect();
    redis.disconnect();
    return Promise.resolve();
  });
  const keys = new Keys("wait-resend:");
  const domain = "sms.example";
  const inbox = new Inbox(redis, keys, durable);
  const event = (id: string) => ({
    kind: "message" as const,
    to: "user@example.org",
    from: `+12025550100@${domain}`,
    id,
    type: "chat" as const,
    body: id,
  });
  expect(await inbox.enqueue(domain, event("first"), "first")).toBe(true);

  const primary = await group.primary();
  const replicas = group.servers.filter((port) => port !== primary);
  for (const port of replicas) await group.pause(port);
  // What the primary sends its stopped replicas piles up in the sockets' buffers, and they would read it
  // when they run again: fill those buffers first, so the write stays in the primary's memory, lost with it.
  const direct = new Redis({ port: primary, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  await direct.set("wait-resend:filler", "x".repeat(32 * 1024 * 1024));
  const outcome = inbox.enqueue(domain, event("second"), "second").then(
    (stored) => `acknowledged (${stored})`,
    (err: unknown) => `refused: ${(err as Error).message}`,
  );
  // The write is on the primary alone; its WAIT waits for the stopped replicas.
  await expect.poll(() => direct.xlen(keys.inbox(domain)), { timeout: 10_000 }).toBe(2);
  direct.disconnect();
  await group.kill(primary);
  for (const port of replicas) await group.resume(port);
  const promoted = await group.failedOver(primary);
  // The new primary gets a replica of its own again: a WAIT sent to it now would be answered at once.
  await expect.poll(() => group.replicas(), { timeout: 30_000 }).toBeGreaterThanOrEqual(1);

  const result = await outcome;
  const onPromoted = new Redis({ port: promoted, host: "127.0.0.1", maxRetriesPerRequest: 0 });
  const stored = (await onPromoted.xrange(keys.inbox(domain), "-", "+")).map(([, f]) => f.join(" "));
  onPromoted.disconnect();
  expect(
    stored.some((f) => f.includes('"id":"second"')),
    "the write was lost with the primary",
  ).toBe(false);
  expect(result).toMatch(/^refused: /);
}, 120_000);
