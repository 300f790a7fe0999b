/**
 * SMS benchmark: XMPP → Twilio-compatible API messages/s and end-to-end latency, webhook → XMPP messages/s,
 * next to Prosody's raw client → component → client echo rate measured in the same run on the same servers.
 * Run: `npx tsx bench/sms.ts` (writes bench/results/sms.json; bench/report.ts turns results into RESULTS.md).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { component, xml as cxml, type Element as CElement } from "@xmpp/component";
import { client, xml, type Element } from "@xmpp/client";
import { pino } from "pino";
import { startBed } from "../test/bed/index.js";
import { startTwilioFake } from "../test/twilio/server.js";
import { parseConfig } from "../src/config/load.js";
import { adapterSchemas, createGateway } from "../src/compose.js";
import { createLogger } from "../src/log.js";

/** Messages per measurement, and how many are in flight at once. */
const N = Number(process.env.BENCH_N ?? 1000);
const WINDOW = 50;
const SECRET = "bench-secret";
const ACCOUNT = "AC" + "2".repeat(32);
const TOKEN = "bench-token";
const OWN = "+12025550100";

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Sends `n` items with at most WINDOW outstanding; `start(i)` starts one, resolved when it is done. */
async function windowed(n: number, start: (i: number) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next < n) await start(next++);
    }),
  );
  return performance.now() - t0;
}

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
  await peer.registerUser("bench", "bench");
  const user = client({
    service: `xmpp://127.0.0.1:${peer.c2sPort}`,
    domain: "localhost",
    username: "bench",
    password: "bench",
    resource: "b",
  });
  const waiting = new Map<string, () => void>();
  user.on("stanza", (el: Element) => {
    for (const key of [el.attrs.id ?? "", el.getChildText("body") ?? ""]) {
      waiting.get(key)?.();
      waiting.delete(key);
    }
  });
  await user.start();
  await user.send(xml("presence"));
  const expect = (key: string) => new Promise<void>((resolve) => waiting.set(key, resolve));

  // 1. Prosody's raw echo: client → component → client, no gateway in between.
  const raw = component({
    service: `xmpp://127.0.0.1:${peer.componentPort}`,
    domain: "raw.localhost",
    password: SECRET,
  });
  raw.on("error", () => undefined);
  raw.on("stanza", (el: CElement) => {
    if (el.is("message"))
      void raw.send(
        cxml("message", { to: el.attrs.from, from: el.attrs.to, id: el.attrs.id }, cxml("body", {}, "e")),
      );
  });
  await raw.start();
  raw.socket?.setNoDelay(true);
  const rawMs = await windowed(N, async (i) => {
    const done = expect(`raw-${i}`);
    await user.send(xml("message", { to: `echo@raw.localhost`, id: `raw-${i}` }, xml("body", {}, "x")));
    await done;
  });
  await raw.stop();
  console.error(`raw echo: ${N} in ${rawMs.toFixed(0)} ms`);

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
  const gateway = createGateway(loaded, createLogger({ level: "warn", destination: pino.destination(2) }));
  await gateway.start();
  await gateway.services.get("sms")!.ctx.link.waitOnline();
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "mode" }, xml("value", {}, "dedicated")),
  );
  const regDone = expect("reg");
  await user.send(
    xml(
      "iq",
      { type: "set", to: "sms.localhost", id: "reg" },
      xml("query", { xmlns: "jabber:iq:register" }, form),
    ),
  );
  await regDone;

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

  latencies.sort((a, b) => a - b);
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    n: N,
    window: WINDOW,
    prosodyRawEchoPerSecond: Math.round((N / rawMs) * 1000),
    xmppToTwilioPerSecond: Math.round((N / outMs) * 1000),
    xmppToTwilioLatencyMs: {
      p50: +percentile(latencies, 50).toFixed(1),
      p99: +percentile(latencies, 99).toFixed(1),
    },
    webhookToXmppPerSecond: Math.round((N / inMs) * 1000),
  };
  console.log(JSON.stringify(result, null, 2));
  await mkdir(new URL("results/", import.meta.url), { recursive: true });
  await writeFile(new URL("results/sms.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
  await user.stop();
  await gateway.stop();
  await fake.stop();
  await bed.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
