/**
 * Redis Sentinel: the compiled gateway finds its primary through three sentinels and follows a failover by
 * itself. With `redis.replication.minReplicas` 1, a webhook is answered 200 only once a replica has the
 * message (WAIT), so killing the primary (SIGKILL) under traffic loses nothing that was acknowledged.
 *
 * Traffic: SMS webhooks (each retried with its MessageSid until answered 200, as Twilio does) and SMS sent
 * by the user. The primary is killed, a replica promoted; the killed server comes back as a replica (with one
 * replica only, the new primary cannot confirm writes until then: the gateway answers "try later" meanwhile).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it, onTestFailed } from "vitest";
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
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

it.each([
  { replicas: 1, topology: "one replica: the killed primary comes back as a replica" },
  { replicas: 2, topology: "two replicas: the other one follows the promoted primary" },
])(
  "loses no acknowledged message and sends none twice when the Redis primary is killed under traffic ($topology)",
  async ({ replicas }) => {
    ensureDist();
    const bed = sharedBed();
    const peer = bed.prosody!;
    const slot = await takeSlot(bed);
    const domain = slotDomain(slot, "sms");
    const dir = await mkdtemp(path.join(tmpdir(), "sentinel-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const group = await startSentinelGroup({ dir: path.join(dir, "redis"), replicas });
    cleanup.push(() => group.stop());
    const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
    cleanup.push(() => fake.stop());
    const userName = `sentinel-${slot}-${replicas}`;
    const gw = await spawnGateway({
      dir,
      name: `sentinel-${replicas}`,
      env: { GW_SECRET: TEST_SECRET, TWILIO_TOKEN: TOKEN },
      config: {
        xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: [peer.host] },
        redis: {
          url: "redis://127.0.0.1:6379",
          sentinels: group.sentinels,
          masterName: group.masterName,
          keyPrefix: `sentinel-${slot}-${replicas}:`,
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
    // A failure says what the gateway saw: its warnings and what it logged about delivery, in order.
    onTestFailed(() => {
      const seen = gw.lines.filter((l) => Number(l.level) >= 40 || /deliver|replica/i.test(String(l.msg)));
      console.log(
        `gateway log (${seen.length} lines):\n${seen
          .slice(-80)
          .map((l) => JSON.stringify(l))
          .join("\n")}`,
      );
    });
    await gw.waitLog("component stream online", { timeoutMs: 30_000 });
    const user = await TestUser.login(peer, userName);
    cleanup.push(() => user.stop());
    const reg = await user.iq("set", domain, registration({ mode: "dedicated" }));
    expect(reg.attrs.type).toBe("result");
    const webhookUrl = `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`;

    // Inbound: each message is sent until answered 200 (Twilio retries what is not), with the same sid.
    const acknowledged: string[] = [];
    let answeredAfterKill: number | undefined;
    let killedAt: number | undefined = undefined;
    let inbound = 0;
    const sendInbound = async (): Promise<void> => {
      const body = `in-${inbound++}`;
      const messageSid = `SM${String(inbound).padStart(32, "0")}`;
      for (;;) {
        const answer = await fake
          .sendInbound({ from: CONTACT, to: OWN, body, webhookUrl, messageSid })
          .catch(() => ({ status: 0 }));
        if (answer.status === 200) {
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
    const bodies = () =>
      user.received
        .filter((el) => el.name === "message" && el.attrs.from?.startsWith("+"))
        .map((el) => el.getChildText("body") ?? "");
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
