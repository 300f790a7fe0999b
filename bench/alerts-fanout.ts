/**
 * Alert fan-out benchmark: one alert, through the alert API, to a group of 10,000 generated recipients whose
 * contacts are in Redis. Measures the time from the POST until every XMPP message has left the gateway, as
 * Prosody delivers them to a counting component (the recipients are JIDs on that component's domain, so no
 * 10,000 accounts and no offline storage are involved), and the gateway process's RSS before, at its peak and
 * after.
 * Run: `npx tsx bench/alerts-fanout.ts` (writes bench/results/alerts-fanout.json); BENCH_RECIPIENTS to change
 * the size. `npx tsx bench/run.ts --only alerts-fanout` runs it and rewrites bench/RESULTS.md.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { component, type Element } from "@xmpp/component";
import { Redis } from "ioredis";
import { startBed } from "../test/bed/index.js";
import { spawnGateway } from "../test/support/process.js";
import { ensureDist } from "../test/support/dist.js";
import { Keys } from "../src/store/keys.js";
import { GroupStore } from "../adapters/notify/people/groups.js";
import { XMPP_PER_SECOND } from "../adapters/notify/config.js";
import { machine, procStats, saveResult } from "./lib.js";

/** Recipients of the one alert. */
const RECIPIENTS = Number(process.env.BENCH_RECIPIENTS ?? 10_000);
const SECRET = "bench-secret";
const SINK = "sink.localhost";
const ALERTS = "alerts.localhost";
const TOKEN = "bench-alert-token";
const GROUP = "bench-all";
/** Longest the benchmark waits for the last message. */
const DEADLINE_MS = 15 * 60_000;
/** How often the gateway's RSS is sampled while the alert fans out. */
const SAMPLE_MS = 100;

const jidOf = (i: number) => `r${String(i).padStart(5, "0")}@${SINK}`;

async function main(): Promise<void> {
  ensureDist();
  const dir = await mkdtemp(path.join(tmpdir(), "bench-fanout-"));
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    components: [
      { domain: SINK, secret: SECRET },
      { domain: ALERTS, secret: SECRET },
    ],
  });
  const peer = bed.prosody!;
  const redisUrl = bed.redis!.url;
  const keyPrefix = "fanout:";

  // The counting component: every message Prosody routes to a recipient.
  const seen = new Set<string>();
  let firstAt = 0;
  let lastAt = 0;
  const sink = component({
    service: `xmpp://127.0.0.1:${peer.componentPort}`,
    domain: SINK,
    password: SECRET,
  });
  sink.on("error", () => undefined);
  sink.on("stanza", (el: Element) => {
    if (el.name !== "message" || !el.attrs.to?.endsWith(`@${SINK}`)) return;
    if (el.getChild("body") === undefined) return;
    const now = performance.now();
    if (seen.size === 0) firstAt = now;
    seen.add(el.attrs.to);
    lastAt = now;
  });
  await sink.start();

  // 10,000 recipients: contacts (phone and email verified, XMPP first) and one group, as the admin
  // commands write them (GroupStore is their code).
  const redis = new Redis(redisUrl);
  const key = new Keys(keyPrefix).adapterKey("notify");
  const members = Array.from({ length: RECIPIENTS }, (_, i) => jidOf(i));
  for (let i = 0; i < members.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const [j, jid] of members.slice(i, i + 1000).entries())
      pipeline.hset(key("contact", jid), {
        v: "1",
        phone: `+1202555${String(i + j).padStart(4, "0")}`,
        phoneVerified: "1",
        email: `r${i + j}@example.org`,
        emailVerified: "1",
        channels: "xmpp,sms,email",
        tz: "UTC",
      });
    await pipeline.exec();
  }
  await new GroupStore(redis, key).define(GROUP, members);

  const gw = await spawnGateway({
    dir,
    name: "fanout",
    env: { S: SECRET, NT: TOKEN, LOG_LEVEL: "warn" },
    config: {
      xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
      redis: { url: redisUrl, keyPrefix },
      adapters: {
        notify: {
          domain: ALERTS,
          secretEnv: "S",
          tokens: [{ name: "bench", tokenEnv: "NT", groups: [GROUP] }],
          // XMPP only, and no step after it within the run: the benchmark measures the XMPP fan-out.
          policies: { xmpp: { steps: [{ channel: "xmpp", waitSeconds: 86_400 }] } },
          defaultPolicy: "xmpp",
          limits: { maxRecipients: RECIPIENTS },
        },
      },
    },
  });
  const base = `http://127.0.0.1:${gw.httpPort}`;
  for (const end = Date.now() + 30_000; ;) {
    const ready = await fetch(`http://127.0.0.1:${gw.privatePort}/readyz`).catch(() => undefined);
    if (ready?.status === 200) break;
    if (Date.now() > end) throw new Error("the gateway did not get ready");
    await new Promise((r) => setTimeout(r, 200));
  }
  const before = await procStats(gw.pid);
  let peakKiB = before.rssKiB;
  const sampler = setInterval(() => {
    procStats(gw.pid)
      .then((s) => (peakKiB = Math.max(peakKiB, s.rssKiB)))
      .catch(() => undefined);
  }, SAMPLE_MS);

  const t0 = performance.now();
  const answer = await fetch(`${base}/api/v1/alerts`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ recipients: [GROUP], title: "Fan-out benchmark", text: "x", severity: "warning" }),
  });
  const acceptedMs = performance.now() - t0;
  const body = (await answer.json()) as { id?: string };
  if (answer.status !== 202 || !body.id)
    throw new Error(`alert refused: ${answer.status} ${JSON.stringify(body)}`);
  console.error(`alert ${body.id} accepted in ${acceptedMs.toFixed(0)} ms`);

  let progress = 0;
  while (seen.size < RECIPIENTS) {
    if (performance.now() - t0 > DEADLINE_MS) break;
    await new Promise((r) => setTimeout(r, 250));
    if (seen.size - progress >= 1000) {
      progress = seen.size;
      console.error(`${progress} delivered after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  clearInterval(sampler);
  const after = await procStats(gw.pid);
  const allMs = lastAt - t0;
  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    recipients: RECIPIENTS,
    delivered: seen.size,
    acceptedMs: +acceptedMs.toFixed(1),
    firstMessageMs: +(firstAt - t0).toFixed(1),
    allMessagesMs: seen.size === RECIPIENTS ? +allMs.toFixed(1) : null,
    /** The named XMPP rate the run used (adapters.notify.rates.xmppPerSecond, its default). */
    xmppPerSecond: XMPP_PER_SECOND,
    messagesPerSecond: seen.size ? Math.round((seen.size / (lastAt - t0)) * 1000) : 0,
    rssMiB: {
      before: +(before.rssKiB / 1024).toFixed(1),
      peak: +(peakKiB / 1024).toFixed(1),
      after: +(after.rssKiB / 1024).toFixed(1),
    },
    gatewayCpuMs: after.cpuMs - before.cpuMs,
  };
  console.error(JSON.stringify(result, null, 2));
  await saveResult("alerts-fanout", result);

  await gw.kill("SIGTERM");
  await sink.stop().catch(() => undefined);
  redis.disconnect();
  await bed.stop();
  await rm(dir, { recursive: true, force: true });
  if (seen.size < RECIPIENTS) {
    console.error(`only ${seen.size} of ${RECIPIENTS} messages arrived within ${DEADLINE_MS / 1000} s`);
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
