/**
 * SMS benchmark: XMPP → Twilio-compatible API messages/s and end-to-end latency, webhook → XMPP messages/s,
 * next to Prosody's raw client → component → client echo rate measured in the same run on the same servers.
 * Run: `npx tsx bench/sms.ts` (writes bench/results/sms.json); `npx tsx bench/run.ts` runs every benchmark and
 * writes bench/RESULTS.md.
 */
import { xml } from "@xmpp/client";
import { startBed } from "../test/bed/index.js";
import { startTwilioFake } from "../test/twilio/server.js";
import { parseConfig } from "../src/config/load.js";
import { adapterSchemas } from "../src/compose.js";
import {
  benchUser,
  latencySummary,
  machine,
  rawEcho,
  registerWith,
  saveResult,
  startBenchGateway,
  windowed as windowedN,
} from "./lib.js";

/** Messages per measurement, and how many are in flight at once. */
const N = Number(process.env.BENCH_N ?? 1000);
const WINDOW = 50;
const SECRET = "bench-secret";
const ACCOUNT = "AC" + "2".repeat(32);
const TOKEN = "bench-token";
const OWN = "+12025550100";

const windowed = (n: number, start: (i: number) => Promise<void>) => windowedN(n, WINDOW, start);

async function main(): Promise<void> {
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    components: [
      { domain: "raw.localhost", secret: SECRET },
      { domain: "sms.localhost", secret: SECRET },
    ],
  });
  const peer = bed.prosody!;
  const { user, expect } = await benchUser(peer);

  // 1. Prosody's raw echo: client → component → client, no gateway in between.
  const raw = await rawEcho({
    peer,
    domain: "raw.localhost",
    secret: SECRET,
    user,
    expect,
    n: N,
    window: WINDOW,
  });
  console.error(`raw echo: ${raw.perSecond} msg/s`);

  // 2. The gateway with the SMS adapter against the Twilio-compatible server.
  const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  const loaded = parseConfig(
    "bench",
    {
      xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
      redis: { url: bed.redis!.url, keyPrefix: "bench:" },
      http: { port: 0 },
      log: { level: "warn" },
      adapters: {
        sms: {
          domain: "sms.localhost",
          secretEnv: "S",
          twilio: { accountSid: ACCOUNT, authTokenEnv: "T", apiBaseUrl: fake.url },
          numbers: { dedicated: { [OWN]: "bench@localhost" } },
          limits: { messagesPerHour: 1_000_000, segmentsPerDay: 1_000_000 },
        },
      },
    },
    adapterSchemas,
    { S: SECRET, T: TOKEN },
  );
  const gateway = await startBenchGateway(loaded, "sms");
  await registerWith(user, expect, "sms.localhost", { mode: "dedicated" });

  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const arrived = new Map<string, () => void>();
  fake.onSent((m) => {
    const t = sentAt.get(m.body);
    if (t !== undefined) latencies.push(performance.now() - t);
    arrived.get(m.body)?.();
  });
  const outMs = await windowed(N, async (i) => {
    const body = `bench ${i}`;
    const done = new Promise<void>((resolve) => arrived.set(body, resolve));
    sentAt.set(body, performance.now());
    await user.send(
      xml(
        "message",
        {
          to: `+1202555${String(1000 + (i % 8000)).padStart(4, "0")}@sms.localhost`,
          id: `o-${i}`,
          type: "chat",
        },
        xml("body", {}, body),
      ),
    );
    await done;
  });
  await fake.idle();
  console.error(`XMPP → Twilio: ${N} in ${outMs.toFixed(0)} ms`);

  const webhook = `http://127.0.0.1:${gateway.http!.port}/sms/twilio/sms`;
  const inMs = await windowed(N, async (i) => {
    const done = expect(`in ${i}`);
    const answer = await fake.sendInbound({
      from: "+12025550123",
      to: OWN,
      body: `in ${i}`,
      webhookUrl: webhook,
    });
    if (answer.status !== 200) throw new Error(`webhook answered ${answer.status}`);
    await done;
  });

  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    n: N,
    window: WINDOW,
    prosodyRawEchoPerSecond: raw.perSecond,
    prosodyRawEchoRoundTripMs: raw.roundTripMs,
    xmppToTwilioPerSecond: Math.round((N / outMs) * 1000),
    xmppToTwilioLatencyMs: latencySummary(latencies),
    webhookToXmppPerSecond: Math.round((N / inMs) * 1000),
  };
  console.log(JSON.stringify(result, null, 2));
  await saveResult("sms", result);
  await user.stop();
  await gateway.stop();
  await fake.stop();
  await bed.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
