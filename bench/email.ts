/**
 * Email benchmark: XMPP → SMTP relay mails/s and end-to-end latency, SMTP in → XMPP mails/s (with SPF, DKIM
 * and DMARC checked against a DNS server on loopback), next to Prosody's raw client → component → client
 * echo rate measured in the same run on the same servers.
 * Run: `npx tsx bench/email.ts` (writes bench/results/email.json; BENCH_N sets the mails per measurement).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { component, xml as cxml, type Element as CElement } from "@xmpp/component";
import { client, xml, type Element } from "@xmpp/client";
import { simpleParser } from "mailparser";
import nodemailer from "nodemailer";
import { pino } from "pino";
import { SMTPServer } from "smtp-server";
import { freePort, startBed } from "../test/bed/index.js";
import { startDns } from "../test/support/dns.js";
import { parseConfig } from "../src/config/load.js";
import { adapterSchemas, createGateway } from "../src/compose.js";
import { createLogger } from "../src/log.js";

/** Mails per measurement, and how many are in flight at once. */
const N = Number(process.env.BENCH_N ?? 1000);
const WINDOW = 50;
/** SMTP connections the outside sender uses at once (a busy MX opens a few, not fifty). */
const SENDER_CONNECTIONS = 10;
const SECRET = "bench-secret";
const MAIL_DOMAIN = "mail.localhost";

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
      { domain: "email.localhost", secret: SECRET },
    ],
  });
  const dns = await startDns({
    "example.com": "v=spf1 ip4:127.0.0.1 -all",
    "_dmarc.example.com": "v=DMARC1; p=reject",
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

  // 2. The gateway with the email adapter: a real SMTP server as the relay, nodemailer as the outside.
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const arrived = new Map<string, () => void>();
  const relay = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream).then(
        (mail) => {
          const body = mail.text?.trim() ?? "";
          const t = sentAt.get(body);
          if (t !== undefined) latencies.push(performance.now() - t);
          arrived.get(body)?.();
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const relayPort = (relay.server.address() as { port: number }).port;
  const inboundPort = await freePort();
  const loaded = parseConfig(
    "bench",
    {
      xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
      redis: { url: bed.redis!.url, keyPrefix: "bench:" },
      http: { port: 0 },
      log: { level: "warn" },
      adapters: {
        email: {
          domain: "email.localhost",
          secretEnv: "S",
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: relayPort, starttls: false, maxConnections: 5 },
          inbound: { port: inboundPort },
          auth: { dnsServers: [dns.server] },
        },
      },
    },
    adapterSchemas,
    { S: SECRET },
  );
  const gateway = createGateway(loaded, createLogger({ level: "warn", destination: pino.destination(2) }));
  await gateway.start();
  await gateway.services.get("email")!.ctx.link.waitOnline();
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "alias" }, xml("value", {}, "bench")),
  );
  const regDone = expect("reg");
  await user.send(
    xml(
      "iq",
      { type: "set", to: "email.localhost", id: "reg" },
      xml("query", { xmlns: "jabber:iq:register" }, form),
    ),
  );
  await regDone;

  const outMs = await windowed(N, async (i) => {
    const body = `bench ${i}`;
    const done = new Promise<void>((resolve) => arrived.set(body, resolve));
    sentAt.set(body, performance.now());
    await user.send(
      xml(
        "message",
        { to: `friend${i}\\40example.com@email.localhost`, id: `o-${i}`, type: "chat" },
        xml("body", {}, body),
      ),
    );
    await done;
  });
  console.error(`XMPP → relay: ${N} in ${outMs.toFixed(0)} ms`);

  const outside = nodemailer.createTransport({
    host: "127.0.0.1",
    port: inboundPort,
    ignoreTLS: true,
    pool: true,
    maxConnections: SENDER_CONNECTIONS,
    maxMessages: Infinity,
  });
  const inMs = await windowed(N, async (i) => {
    const done = expect(`in ${i}`);
    await outside.sendMail({
      from: "Friend <friend@example.com>",
      to: `bench@${MAIL_DOMAIN}`,
      subject: `mail ${i}`,
      text: `in ${i}`,
    });
    await done;
  });
  console.error(`SMTP → XMPP: ${N} in ${inMs.toFixed(0)} ms`);
  outside.close();

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
    senderConnections: SENDER_CONNECTIONS,
    prosodyRawEchoPerSecond: Math.round((N / rawMs) * 1000),
    xmppToRelayPerSecond: Math.round((N / outMs) * 1000),
    xmppToRelayLatencyMs: {
      p50: +percentile(latencies, 50).toFixed(1),
      p99: +percentile(latencies, 99).toFixed(1),
    },
    smtpToXmppPerSecond: Math.round((N / inMs) * 1000),
  };
  console.log(JSON.stringify(result, null, 2));
  await mkdir(new URL("results/", import.meta.url), { recursive: true });
  await writeFile(new URL("results/email.json", import.meta.url), JSON.stringify(result, null, 2) + "\n");
  await user.stop();
  await gateway.stop();
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  await dns.stop();
  await bed.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
