/**
 * Email benchmark: XMPP → SMTP relay mails/s and end-to-end latency, SMTP in → XMPP mails/s (with SPF, DKIM
 * and DMARC checked against a DNS server on loopback), next to Prosody's raw client → component → client
 * echo rate measured in the same run on the same servers.
 * Run: `npx tsx bench/email.ts` (writes bench/results/email.json; BENCH_N sets the mails per measurement).
 */
import { xml } from "@xmpp/client";
import { simpleParser } from "mailparser";
import nodemailer from "nodemailer";
import { freePort, startBed } from "../test/bed/index.js";
import { startDns } from "../test/support/dns.js";
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
import { smtpServer } from "../test/support/relay.js";

/** Mails per measurement, and how many are in flight at once. */
const N = Number(process.env.BENCH_N ?? 1000);
const WINDOW = 50;
/** SMTP connections the outside sender uses at once (a busy MX opens a few, not fifty). */
const SENDER_CONNECTIONS = 10;
const SECRET = "bench-secret";
const MAIL_DOMAIN = "mail.localhost";

const windowed = (n: number, start: (i: number) => Promise<void>) => windowedN(n, WINDOW, start);

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

  // 2. The gateway with the email adapter: a real SMTP server as the relay, nodemailer as the outside.
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const arrived = new Map<string, () => void>();
  const relay = smtpServer({
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
  const gateway = await startBenchGateway(loaded, "email");
  await registerWith(user, expect, "email.localhost", { alias: "bench" });

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

  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    n: N,
    window: WINDOW,
    senderConnections: SENDER_CONNECTIONS,
    prosodyRawEchoPerSecond: raw.perSecond,
    xmppToRelayPerSecond: Math.round((N / outMs) * 1000),
    xmppToRelayLatencyMs: latencySummary(latencies),
    smtpToXmppPerSecond: Math.round((N / inMs) * 1000),
  };
  console.log(JSON.stringify(result, null, 2));
  await saveResult("email", result);
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
