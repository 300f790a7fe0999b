/**
 * What replicated acknowledgements cost: the compiled gateway (SMS adapter) on a Redis primary with one
 * replica and three sentinels, with `redis.replication.minReplicas` 0 and then 1. Twilio-style webhooks are
 * offered at RATE a second for SECONDS (open loop); for each setting: the webhook's answer time (what WAIT
 * adds before the 200) p50/p99, webhook → XMPP latency p50/p99, and SMS sent by the user: XMPP → Twilio
 * latency (the claim and the hand-off are replicated before the request leaves).
 *
 * Run: `npx tsx bench/replication.ts` (writes bench/results/replication.json).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { xml, type Element } from "@xmpp/client";
import { startBed } from "../test/bed/index.js";
import { startSentinelGroup } from "../test/bed/sentinel.js";
import { ensureDist } from "../test/support/dist.js";
import { spawnGateway } from "../test/support/process.js";
import { startTwilioFake } from "../test/twilio/server.js";
import { benchUser, latencySummary, machine, saveResult, waitReady } from "./lib.js";

const RATE = Number(process.env.BENCH_REPLICATION_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_REPLICATION_SECONDS ?? 10);
const SECRET = "bench-replication";
const ACCOUNT = "AC" + "6".repeat(32);
const TOKEN = "bench-replication-token";
const OWN = "+12025550600";
const DOMAIN = "sms.bench";

async function main(): Promise<void> {
  ensureDist();
  const dir = await mkdtemp(path.join(tmpdir(), "bench-replication-"));
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    redis: false,
    components: [{ domain: DOMAIN, secret: SECRET }],
  });
  const group = await startSentinelGroup({ dir: path.join(dir, "redis"), replicas: 1 });
  const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  const peer = bed.prosody!;
  const { user } = await benchUser(peer);
  const arrivals = new Map<string, number>();
  const waiting = new Map<string, (el: Element) => void>();
  user.on("stanza", (el: Element) => {
    const body = el.getChildText("body");
    if (body) arrivals.set(body, performance.now());
    const w = waiting.get(el.attrs.id ?? "");
    if (w) w(el);
  });

  const results = [];
  try {
    for (const minReplicas of [0, 1]) {
      const gw = await spawnGateway({
        dir,
        name: `replicas-${minReplicas}`,
        env: { GW_SECRET: SECRET, TWILIO_TOKEN: TOKEN, LOG_LEVEL: "warn" },
        config: {
          xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
          redis: {
            url: "redis://127.0.0.1:6379",
            sentinels: group.sentinels,
            masterName: group.masterName,
            keyPrefix: `bench-replication-${minReplicas}:`,
            replication: { minReplicas, timeoutMs: 1_000 },
          },
          log: { level: "warn" },
          adapters: {
            sms: {
              domain: DOMAIN,
              secretEnv: "GW_SECRET",
              twilio: { accountSid: ACCOUNT, authTokenEnv: "TWILIO_TOKEN", apiBaseUrl: fake.url },
              numbers: { dedicated: { [OWN]: "bench@localhost" } },
              limits: { messagesPerHour: 1_000_000, segmentsPerDay: 1_000_000 },
            },
          },
        },
      });
      try {
        await waitReady(gw.privatePort);
        const reg = new Promise<Element>((resolve) => waiting.set("reg", resolve));
        await user.send(
          xml(
            "iq",
            { type: "set", to: DOMAIN, id: "reg" },
            xml(
              "query",
              { xmlns: "jabber:iq:register" },
              xml(
                "x",
                { xmlns: "jabber:x:data", type: "submit" },
                xml("field", { var: "mode" }, xml("value", {}, "dedicated")),
              ),
            ),
          ),
        );
        await reg;
        const webhookUrl = `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`;
        const answerMs: number[] = [];
        const inboundMs: number[] = [];
        const outboundMs: number[] = [];
        const sentAt = new Map<string, number>();
        fake.onSent((m) => {
          const t = sentAt.get(m.body);
          if (t !== undefined) outboundMs.push(performance.now() - t);
        });
        const total = RATE * SECONDS;
        const pending: Promise<void>[] = [];
        const start = performance.now();
        let errors = 0;
        for (let i = 0; i < total;) {
          const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE) + 1);
          for (; i < due; i++) {
            const body = `r${minReplicas}-in-${i}`;
            const t = performance.now();
            pending.push(
              fake.sendInbound({ from: "+12025550123", to: OWN, body, webhookUrl }).then(
                (answer) => {
                  if (answer.status !== 200) errors++;
                  answerMs.push(performance.now() - t);
                  sentAt.set(body, t);
                },
                () => void errors++,
              ),
            );
            if (i % 4 === 0) {
              const out = `r${minReplicas}-out-${i}`;
              sentAt.set(out, performance.now());
              void user.send(
                xml(
                  "message",
                  {
                    to: `+1202555${String(1000 + (i % 8000)).padStart(4, "0")}@${DOMAIN}`,
                    id: out,
                    type: "chat",
                  },
                  xml("body", {}, out),
                ),
              );
            }
          }
          await new Promise((r) => setTimeout(r, 1));
        }
        await Promise.all(pending);
        await new Promise((r) => setTimeout(r, 3_000));
        for (const [body, t] of sentAt) {
          const arrived = arrivals.get(body);
          if (arrived !== undefined && body.includes("-in-")) inboundMs.push(arrived - t);
        }
        const result = {
          minReplicas,
          rate: RATE,
          webhooks: total,
          errors,
          webhookAnswerMs: latencySummary(answerMs),
          webhookToXmppMs: latencySummary(inboundMs),
          xmppToTwilioMs: latencySummary(outboundMs),
          arrivedInbound: inboundMs.length,
          sentOutbound: outboundMs.length,
        };
        console.error(JSON.stringify(result));
        results.push(result);
      } finally {
        await gw.kill("SIGTERM");
      }
    }
    await saveResult("replication", {
      date: new Date().toISOString(),
      machine: machine(),
      seconds: SECONDS,
      results,
    });
  } finally {
    await user.stop().catch(() => undefined);
    await fake.stop();
    await group.stop();
    await bed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
