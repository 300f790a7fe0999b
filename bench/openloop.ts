/**
 * Open-loop cost per message: the compiled gateway (its own process: SMS, email and IRC adapters) is offered
 * messages at a fixed rate for a fixed time on each path, whatever it answers, and the bench's own peers take
 * the timestamps: the XMPP client's send and the Twilio-compatible server's / SMTP relay's / IRC client's
 * receipt (or the webhook's / SMTP client's send and the XMPP client's receipt). All peers live in this
 * process, so the clocks are one.
 *
 * For each path and rate: achieved rate, added latency p50/p99/p99.9, messages that did not arrive, errors,
 * the backlog when sending stopped, the gateway's CPU per message (/proc of its pid only), Redis commands per
 * message (INFO commandstats before/after) and Prosody's CPU per message in the same run (the yardstick); and, to
 * tell the gateway's limits from the machine's, Redis's and the load generator's own CPU per message and how busy
 * the whole machine was; and the longest the gateway's event loop and the load generator's were held up (a
 * stall delays every message behind it: where the p99 comes from).
 *
 * Paths: sms-out (XMPP → Twilio API, with the three status callbacks each SMS brings back), sms-in (Twilio
 * webhook → XMPP), mail-out (XMPP → SMTP relay), mail-in (SMTP → XMPP), irc-out (XMPP → IRC channel), irc-in
 * (one IRC line → FANOUT bridged users; the latency of the last of them).
 *
 * Run: `npx tsx bench/openloop.ts` (writes bench/results/openloop.json). BENCH_OPENLOOP_RATES=100,500,1000,2000,
 * BENCH_OPENLOOP_SECONDS=10, BENCH_OPENLOOP_WARMUP=1000 (messages before each path is measured, over 4 s),
 * BENCH_OPENLOOP_PATHS=sms-out,… choose what runs. BENCH_OPENLOOP_PROFILE=DIR starts the gateway with
 * --cpu-prof into DIR and turns its profile into DIR/<paths>-<rates>.svg (bench/flamegraph.ts); a profiled run
 * does not write the results file. BENCH_OPENLOOP_TRACE=1 sends one message per path after the warm-up and
 * prints the Redis commands it caused, in order, with when each ran (MONITOR; commands run by a Lua script are
 * marked), instead of measuring. BENCH_OPENLOOP_NODE_OPTIONS gives the gateway Node options (the installed
 * command's `#!` line caps V8's young generation: `--max-semi-space-size=2` measures the gateway as installed;
 * the default measures `node dist/src/main.js`), and BENCH_OPENLOOP_RESULT names the results file (openloop).
 * BENCH_OPENLOOP_GATEWAY=PATH runs another build of the gateway, so that two versions are compared on the
 * machine as it is now, one run after the other: the `dist/src/main.js` of another checkout (run as
 * `node dist/src/main.js` is), an executable that takes `--config FILE`, or `bench/floor-gateway.ts` (the least
 * an SMS gateway can do per message: the floor under the sms rows, see there). BENCH_OPENLOOP_LABEL says which
 * version that is, in the results file (the default: the path; for this checkout, its commit).
 * BENCH_OPENLOOP_PROSODY_NAGLE=off runs Prosody with `network_settings = { nagle = false }`, as
 * docs/deployment.md advises for latency (its default leaves Nagle's algorithm on). BENCH_OPENLOOP_TIMELINE=DIR
 * writes, per row, DIR/<path>-<rate>.json: [ms since the row's first send, latency ms] for each arrival (where
 * in the row the slow messages were: a few bursts, or spread).
 *
 * The bench's own clients (XMPP, IRC) write without Nagle's algorithm: a message leaves them when it is sent,
 * so that the latency measured is the gateway's and Prosody's, not the load generator's.
 */
import { execFileSync, spawn } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { Redis } from "ioredis";
import nodemailer from "nodemailer";
import { startBed, type Bed } from "../test/bed/index.js";
import { freePort } from "../test/bed/ports.js";
import { startDns } from "../test/support/dns.js";
import { ensureDist } from "../test/support/dist.js";
import { spawnGateway, type GatewayProcess } from "../test/support/process.js";
import { startTwilioFake, type TwilioFake } from "../test/twilio/server.js";
import { callTree, renderSvg, type Profile } from "./flamegraph.js";
import { IrcClient, machine, percentile, procStats, saveResult, slowMessages, waitReady } from "./lib.js";
import { smtpServer } from "../test/support/relay.js";

const RATES = (process.env.BENCH_OPENLOOP_RATES ?? "100,500,1000,2000").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_OPENLOOP_SECONDS ?? 10);
const PATHS = (process.env.BENCH_OPENLOOP_PATHS ?? "sms-out,sms-in,mail-out,mail-in,irc-out,irc-in").split(
  ",",
);
/** How long after the last send a message may still arrive before it counts as lost. */
const DRAIN_MS = Number(process.env.BENCH_OPENLOOP_DRAIN_MS ?? 15_000);
/** Messages sent on a path (over WARMUP_SECONDS) before it is measured. */
const WARMUP = Number(process.env.BENCH_OPENLOOP_WARMUP ?? 1000);
/**
 * Over how long the warm-up is offered. A gateway in service has run each path many thousand times: the
 * mail parsing and checking code, in particular, is only optimised by V8 after a few hundred mails, and a
 * shorter warm-up measured its first optimisation instead of the steady state (p99 at 500/s went from 590 to
 * 80 ms over three rows in a row).
 */
const WARMUP_SECONDS = 4;
/** Bridged users in the IRC channel of the irc-in path; its rate counts IRC lines, each one FANOUT stanzas. */
const FANOUT = Number(process.env.BENCH_OPENLOOP_FANOUT ?? 10);
/** Sockets the SMTP client uses towards the gateway's inbound listener. */
const SMTP_CONNECTIONS = 20;
const PROFILE_DIR = process.env.BENCH_OPENLOOP_PROFILE;
const GATEWAY_COMMAND = process.env.BENCH_OPENLOOP_GATEWAY;
/** BENCH_OPENLOOP_NODE_OPTIONS: Node options for the gateway (e.g. the installed command's), to compare. */
const GATEWAY_NODE_OPTIONS = process.env.BENCH_OPENLOOP_NODE_OPTIONS ?? "";
const TRACE = process.env.BENCH_OPENLOOP_TRACE === "1";
const PROSODY_NAGLE = process.env.BENCH_OPENLOOP_PROSODY_NAGLE !== "off";
const TIMELINE_DIR = process.env.BENCH_OPENLOOP_TIMELINE;
const SECRET = "bench-openloop";
const ACCOUNT = "AC" + "3".repeat(32);
const TOKEN = "bench-openloop-token";
const OWN = "+12025550100";
const MAIL_DOMAIN = "mail.bench";
const IRC_NAME = "irc.localhost";
const CHANNEL = "#openloop";
const DOMAINS = { sms: "sms.bench", email: "email.bench", irc: "irc.bench" };

const now = () => performance.now();

/** Sent and arrival times by key; a key may expect several arrivals (fan-out), the last one counts. */
class Clock {
  private readonly sentAt = new Map<string, number>();
  private readonly left = new Map<string, number>();
  /** Each arrival: when its message was sent, and its latency (ms). */
  readonly arrivals: [sentAt: number, latency: number][] = [];
  errors = 0;
  /** The first few errors, as told (a stanza error's condition and text, an HTTP status, an SMTP reply). */
  readonly errorSamples: string[] = [];

  /**
   * The first few messages a receiving peer got that are not an arrival of this row (another text, or a key
   * not sent in it): when a row loses messages, what came instead.
   */
  readonly unmatchedSamples: string[] = [];

  error(what: string): void {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(what);
  }

  unmatched(what: string): void {
    if (this.unmatchedSamples.length < 5) this.unmatchedSamples.push(what.slice(0, 300));
  }

  sent(key: string, arrivals = 1): void {
    this.sentAt.set(key, now());
    this.left.set(key, arrivals);
  }

  arrived(key: string): void {
    const left = this.left.get(key);
    if (left === undefined) return this.unmatched(`not sent in this row: ${key}`);
    if (left > 1) {
      this.left.set(key, left - 1);
      return;
    }
    const sentAt = this.sentAt.get(key)!;
    this.arrivals.push([sentAt, now() - sentAt]);
    this.left.delete(key);
  }

  get pending(): number {
    return this.left.size;
  }
}

/** A row's arrivals as [ms since its first send, latency ms], rounded to 0.1 ms, in DIR/NAME.json. */
async function writeTimeline(
  dir: string,
  name: string,
  arrivals: readonly [number, number][],
): Promise<void> {
  const first = Math.min(...arrivals.map(([sentAt]) => sentAt));
  const round = (ms: number) => Math.round(ms * 10) / 10;
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, `${name}.json`),
    JSON.stringify(arrivals.map(([sentAt, latency]) => [round(sentAt - first), round(latency)])),
  );
}

/** Calls `send(i)` at `rate` a second for `seconds`, never waiting for an answer. Returns the achieved rate. */
async function offer(rate: number, seconds: number, send: (i: number) => void): Promise<number> {
  const total = Math.round(rate * seconds);
  const start = now();
  let i = 0;
  while (i < total) {
    const due = Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1);
    while (i < due) send(i++);
    // Sleep until the next one is due: polling every millisecond would cost this process (and the machine)
    // a wake-up each time, more than the messages themselves at low rates.
    const next = start + (i / rate) * 1000;
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, next - now())));
  }
  return total / ((now() - start) / 1000);
}

/**
 * The longest the gateway's event loop was held up since the last call, in ms (prom-client's event-loop lag,
 * sampled every 10 ms and reset at each scrape of /metrics).
 */
async function gatewayStallMs(privatePort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${privatePort}/metrics`)).text();
  const max = /^xgw_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1];
  return max === undefined ? NaN : +(Number(max) * 1000).toFixed(1);
}

/**
 * A Node process that does nothing but watch its own event loop: the stalls it sees come from the machine
 * (the 2 cores shared by every process, the hypervisor), not from any code. `read()` gives the longest since
 * the previous read, in ms.
 */
function startStallProbe(): { read(): Promise<number>; stop(): void } {
  const code = `
    const { monitorEventLoopDelay } = require("node:perf_hooks");
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    process.stdin.on("data", () => { process.stdout.write(h.max / 1e6 + "\\n"); h.reset(); });`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["pipe", "pipe", "inherit"] });
  let waiting: ((ms: number) => void)[] = [];
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.trim().split("\n")) waiting.shift()?.(+Number(line).toFixed(1));
  });
  return {
    read: () =>
      new Promise<number>((resolve) => {
        waiting.push(resolve);
        child.stdin.write("read\n");
      }),
    stop: () => {
      waiting = [];
      child.kill();
    },
  };
}

/** Calls per Redis command so far (INFO commandstats). */
async function redisCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info("commandstats");
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) calls.set(m[1]!, Number(m[2]));
  return calls;
}

/** Commands per message between two readings: the total and the commands that make up most of it. */
function redisPerMessage(before: Map<string, number>, after: Map<string, number>, sent: number) {
  const per = [...after]
    .map(([cmd, n]) => [cmd, (n - (before.get(cmd) ?? 0)) / sent] as const)
    .filter(([, n]) => n > 0);
  // The two INFO calls that take the readings are not the gateway's.
  const total = per.reduce((sum, [, n]) => sum + n, 0) - 2 / sent;
  const top = per.sort((a, b) => b[1] - a[1]).slice(0, 8);
  return { total: +total.toFixed(2), top: Object.fromEntries(top.map(([c, n]) => [c, +n.toFixed(2)])) };
}

/**
 * Waits until the gateway is idle (under 3 % of a core over half a second, for at most a minute): what an
 * overloaded row left behind (mail still queued in the SMTP client, a backlog in the inbox) must not be
 * counted in the next row.
 */
async function settled(pid: number): Promise<void> {
  const until = now() + 60_000;
  for (;;) {
    const before = (await procStats(pid)).cpuMs;
    await new Promise((r) => setTimeout(r, 500));
    if ((await procStats(pid)).cpuMs - before < 15 || now() > until) return;
  }
}

/**
 * The executable that runs the gateway build named by BENCH_OPENLOOP_GATEWAY: an executable as given, or for a
 * `main.js` (or a `.ts`, through tsx), a script in `dir` that runs it with this Node and no options (as
 * `node dist/src/main.js` runs).
 */
async function gatewayCommand(given: string, dir: string): Promise<string> {
  if (!/\.[jt]s$/.test(given)) return given;
  // A TypeScript file (bench/floor-gateway.ts) runs through tsx, which only transforms it as it loads.
  const loader = given.endsWith(".ts") ? "--import tsx " : "";
  const script = path.join(dir, "other-gateway.sh");
  await writeFile(script, `#!/bin/sh\nexec '${process.execPath}' ${loader}'${path.resolve(given)}' "$@"\n`, {
    mode: 0o755,
  });
  return script;
}

/** The commit of this checkout (the gateway measured when no other build is named), with "+changes" if edited. */
function gitHead(): string {
  const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8" }).trim();
  try {
    return `${git("rev-parse", "--short", "HEAD")}${git("status", "--porcelain", "--", "src", "adapters") ? "+changes" : ""}`;
  } catch {
    return "unknown";
  }
}

/** Jiffies the whole machine spent busy and in all, so far (/proc/stat, every CPU). */
async function machineJiffies(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((sum, v) => sum + v, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0); // idle, iowait
  return { busy: total - idle, total };
}

/** The load generator's own CPU (this process: clients, the Twilio-compatible server, the SMTP sink), in ms. */
function benchCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

function prosodyPid(bed: Bed): number {
  return Number(execFileSync("pgrep", ["-n", "-f", `prosody.*${bed.dir}`], { encoding: "utf8" }).trim());
}

async function xmppUser(
  bed: Bed,
  name: string,
): Promise<{ xmpp: Client; on: (fn: (el: Element) => void) => void }> {
  const peer = bed.prosody!;
  await peer.registerUser(name, "pw");
  const xmpp = client({
    service: `xmpp://127.0.0.1:${peer.c2sPort}`,
    domain: "localhost",
    username: name,
    password: "pw",
    resource: "b",
  });
  const handlers: ((el: Element) => void)[] = [];
  xmpp.on("stanza", (el: Element) => handlers.forEach((h) => h(el)));
  xmpp.on("error", () => undefined);
  await xmpp.start();
  // A stanza leaves when it is sent, not once Prosody acknowledged the one before (Nagle's algorithm).
  (xmpp as unknown as { socket?: Socket }).socket?.setNoDelay(true);
  await xmpp.send(xml("presence"));
  return { xmpp, on: (fn) => handlers.push(fn) };
}

/** Sends an iq and waits for its answer. */
function iq(user: { xmpp: Client; on: (fn: (el: Element) => void) => void }, el: Element): Promise<Element> {
  return new Promise((resolve) => {
    user.on((answer) => {
      if (answer.name === "iq" && answer.attrs.id === el.attrs.id) resolve(answer);
    });
    void user.xmpp.send(el);
  });
}

async function register(user: Parameters<typeof iq>[0], domain: string, fields: Record<string, string>) {
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
  );
  const answer = await iq(
    user,
    xml(
      "iq",
      { type: "set", to: domain, id: `reg-${domain}` },
      xml("query", { xmlns: "jabber:iq:register" }, form),
    ),
  );
  if (answer.attrs.type !== "result")
    throw new Error(`registration with ${domain} failed: ${answer.toString()}`);
}

async function joinRoom(user: Parameters<typeof iq>[0], room: string, nick: string): Promise<void> {
  await new Promise<void>((resolve) => {
    user.on((el) => {
      const codes = el.getChild("x", "http://jabber.org/protocol/muc#user")?.getChildren("status") ?? [];
      if (
        el.name === "presence" &&
        el.attrs.from === `${room}/${nick}` &&
        codes.some((s) => s.attrs.code === "110")
      )
        resolve();
    });
    void user.xmpp.send(
      xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
    );
  });
}

interface PathRun {
  /** Sets up the path once (before its first rate). */
  prepare?(): Promise<void>;
  /** Sends message i of a run, keyed `key` (the body the receiving peer reports). */
  send(i: number, key: string, clock: Clock): void;
  /** Arrivals each send expects (fan-out). */
  arrivals?: number;
}

async function main(): Promise<void> {
  ensureDist();
  const dir = await mkdtemp(path.join(tmpdir(), "bench-openloop-"));
  const bed = await startBed({
    ejabberd: false,
    prosodyNagle: PROSODY_NAGLE,
    components: Object.values(DOMAINS).map((domain) => ({ domain, secret: SECRET })),
  });
  const dns = await startDns({ "example.com": "v=spf1 ip4:127.0.0.1 -all" });
  const redis = new Redis(bed.redis!.url);
  const fake: TwilioFake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  let clock = new Clock();
  fake.onSent((m) => clock.arrived(m.body));
  const relay = smtpServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    size: 1024 * 1024,
    // Like a relay on loopback: no reverse DNS of 127.0.0.1, and no parsing beyond finding the key, so that
    // this process spends on each mail what a relay would, not mailparser's share of the 2 cores.
    disableReverseLookup: true,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        // The body is the key, one 7-bit line (the subject is the thread's).
        const key = /\r\n\r\n(\S+)/.exec(Buffer.concat(chunks).toString("latin1"))?.[1];
        if (key) clock.arrived(key);
        callback();
      });
    },
  });
  relay.server.maxConnections = 1000;
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const relayPort = (relay.server.address() as { port: number }).port;
  const inboundPort = await freePort();

  const gw: GatewayProcess = await spawnGateway({
    dir,
    name: "openloop",
    ...(GATEWAY_COMMAND ? { command: await gatewayCommand(GATEWAY_COMMAND, dir) } : {}),
    env: {
      GW_SECRET: SECRET,
      TWILIO_TOKEN: TOKEN,
      LOG_LEVEL: "warn",
      NODE_OPTIONS: [PROFILE_DIR ? `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}` : "", GATEWAY_NODE_OPTIONS]
        .join(" ")
        .trim(),
    },
    config: {
      xmpp: { service: `xmpp://127.0.0.1:${bed.prosody!.componentPort}`, serverDomains: ["localhost"] },
      redis: { url: bed.redis!.url, keyPrefix: "bench-openloop:" },
      log: { level: "warn" },
      adapters: {
        sms: {
          domain: DOMAINS.sms,
          secretEnv: "GW_SECRET",
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TWILIO_TOKEN", apiBaseUrl: fake.url },
          numbers: { dedicated: { [OWN]: "sender@localhost" } },
          limits: { messagesPerHour: 10_000_000, segmentsPerDay: 10_000_000 },
        },
        email: {
          domain: DOMAINS.email,
          secretEnv: "GW_SECRET",
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: relayPort, starttls: false, maxConnections: 20 },
          inbound: { port: inboundPort },
          auth: { dnsServers: [dns.server] },
        },
        irc: {
          domain: DOMAINS.irc,
          secretEnv: "GW_SECRET",
          servers: { allow: [IRC_NAME] },
          tls: false,
          addresses: { [IRC_NAME]: { host: "127.0.0.1", port: bed.irc!.port } },
          lineDelayMs: 0,
          maxConnectionsPerServer: 10_000,
        },
      },
    },
  });
  await waitReady(gw.privatePort);

  const sender = await xmppUser(bed, "sender");
  const receiver = await xmppUser(bed, "receiver");
  const members = await Promise.all(Array.from({ length: FANOUT }, (_, i) => xmppUser(bed, `member${i}`)));
  const bodyOf = (el: Element) => (el.name === "message" ? el.getChildText("body") : null);
  for (const u of [sender, receiver, ...members])
    u.on((el) => {
      if (el.name === "message" && el.attrs.type === "error") {
        const error = el.getChild("error");
        const condition = error?.children.find((c) => typeof c !== "string" && c.name !== "text");
        clock.error(
          `${typeof condition === "string" ? "" : (condition?.name ?? "")}: ${error?.getChildText("text") ?? ""}`,
        );
      }
      const body = bodyOf(el);
      if (body?.startsWith("ol-")) clock.arrived(body);
      else if (body && el.attrs.type !== "error") clock.unmatched(el.toString());
    });
  const observer = await IrcClient.connect(bed.irc!.port, "olobserver");
  observer.onLine((line) => {
    const m = / PRIVMSG \S+ :(ol-\S+)$/.exec(line);
    if (m?.[1]) clock.arrived(m[1]);
  });
  const room = `${CHANNEL}%${IRC_NAME}@${DOMAINS.irc}`;
  const mailer = nodemailer.createTransport({
    host: "127.0.0.1",
    port: inboundPort,
    ignoreTLS: true,
    pool: true,
    maxConnections: SMTP_CONNECTIONS,
    maxMessages: Infinity,
  });
  const webhook = `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`;

  const paths: Record<string, PathRun> = {
    "sms-out": {
      prepare: () => register(sender, DOMAINS.sms, { mode: "dedicated" }),
      send(i, key) {
        const to = `+1202555${String(1000 + (i % 8000)).padStart(4, "0")}@${DOMAINS.sms}`;
        void sender.xmpp.send(xml("message", { to, id: key, type: "chat" }, xml("body", {}, key)));
      },
    },
    "sms-in": {
      send(_i, key, c) {
        fake.sendInbound({ from: "+12025550123", to: OWN, body: key, webhookUrl: webhook }).then(
          (answer) => {
            if (answer.status !== 200) c.error(`HTTP ${answer.status}`);
          },
          (err: Error) => c.error(err.message),
        );
      },
    },
    "mail-out": {
      prepare: () => register(sender, DOMAINS.email, { alias: "sender" }),
      send(i, key) {
        const to = `friend${i % 1000}\\40example.com@${DOMAINS.email}`;
        void sender.xmpp.send(xml("message", { to, id: key, type: "chat" }, xml("body", {}, key)));
      },
    },
    "mail-in": {
      prepare: () => register(receiver, DOMAINS.email, { alias: "receiver" }),
      send(_i, key, c) {
        mailer
          .sendMail({
            from: "Friend <friend@example.com>",
            to: `receiver@${MAIL_DOMAIN}`,
            subject: key,
            text: key,
          })
          .catch((err: Error) => c.error(err.message));
      },
    },
    "irc-out": {
      async prepare() {
        observer.send(`JOIN ${CHANNEL}`);
        await joinRoom(sender, room, "olsender");
      },
      send(_i, key) {
        void sender.xmpp.send(xml("message", { to: room, type: "groupchat", id: key }, xml("body", {}, key)));
      },
    },
    "irc-in": {
      async prepare() {
        await Promise.all(members.map((m, i) => joinRoom(m, room, `olmember${i}`)));
      },
      arrivals: FANOUT,
      send(_i, key) {
        observer.send(`PRIVMSG ${CHANNEL} :${key}`);
      },
    },
  };

  /**
   * Before a path is measured: WARMUP messages at a moderate rate, waited for, so that what is timed is the steady
   * state, not the first use of a code path (the Twilio SDK and mail libraries load at their first use).
   */
  async function warmUp(name: string, p: PathRun): Promise<void> {
    clock = new Clock();
    await offer(WARMUP / WARMUP_SECONDS, WARMUP_SECONDS, (i) => {
      const key = `ol-warm-${name}-${i}`;
      clock.sent(key, p.arrivals ?? 1);
      p.send(i, key, clock);
    });
    const start = now();
    while (clock.pending > 0 && now() - start < DRAIN_MS) await new Promise((r) => setTimeout(r, 50));
    await fake.idle();
  }

  /** One message on a path, and the Redis commands it caused until everything it brought back settled. */
  async function trace(name: string, p: PathRun): Promise<void> {
    await new Promise((r) => setTimeout(r, 1_000)); // what the warm-up left running settles
    const monitor = await redis.monitor();
    const lines: { at: number; lua: boolean; text: string }[] = [];
    let sentAt = Infinity;
    monitor.on("monitor", (time: string, args: string[], source: string) => {
      const [cmd = "", ...rest] = args;
      if (/^(info|monitor)$/i.test(cmd)) return;
      const shown = rest.map((a) => (a.length > 40 ? `${a.slice(0, 37)}...` : a)).join(" ");
      // Redis's clock and this process's are the machine's: when each command ran, after the send.
      lines.push({
        at: Number(time) * 1000 - sentAt,
        lua: source === "lua",
        text: `${cmd.toUpperCase()} ${shown}`,
      });
    });
    clock = new Clock();
    const key = `ol-trace-${name}`;
    clock.sent(key, p.arrivals ?? 1);
    sentAt = Date.now();
    p.send(0, key, clock);
    const start = now();
    while (clock.pending > 0 && now() - start < DRAIN_MS) await new Promise((r) => setTimeout(r, 20));
    await fake.idle();
    await new Promise((r) => setTimeout(r, 500));
    monitor.disconnect();
    const outside = lines.filter((l) => !l.lua).length;
    const latency = clock.arrivals[0]?.[1];
    console.log(
      `\n${name}: ${outside} commands sent by the gateway, ${lines.length - outside} run by scripts; ` +
        `arrived ${latency === undefined ? "never" : `after ${latency.toFixed(1)} ms`}`,
    );
    for (const l of lines)
      console.log(
        `  ${Number.isFinite(l.at) ? `+${l.at.toFixed(1)} ms`.padStart(11) : ""}  ${l.lua ? "  lua " : ""}${l.text}`,
      );
  }

  const gatewayPid = gw.pid;
  const prosody = prosodyPid(bed);
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info("server"))?.[1]);
  const results = [];
  const probe = startStallProbe();
  try {
    // What the gateway's timers wake it for when no message passes (part of each row's wake-ups per message).
    await settled(gatewayPid);
    const idleFrom = await procStats(gatewayPid);
    await new Promise((r) => setTimeout(r, 2000));
    const idleTo = await procStats(gatewayPid);
    const idle = {
      wakeUpsPerSecond: (idleTo.wakeUps - idleFrom.wakeUps) / 2,
      writesPerSecond: (idleTo.writes - idleFrom.writes) / 2,
    };
    for (const name of PATHS) {
      const p = paths[name];
      if (!p) throw new Error(`unknown path ${name}`);
      await p.prepare?.();
      await warmUp(name, p);
      if (TRACE) {
        await trace(name, p);
        continue;
      }
      for (const rate of RATES) {
        await settled(gatewayPid);
        clock = new Clock();
        fake.reset();
        const before = {
          gw: await procStats(gatewayPid),
          prosody: await procStats(prosody),
          redisServer: await procStats(redisPid),
          machine: await machineJiffies(),
          bench: benchCpuMs(),
          redis: await redisCalls(redis),
        };
        await gatewayStallMs(gw.privatePort);
        await probe.read();
        // This process's own stalls count in every latency it measures (its peers timestamp on its loop).
        const benchLoop = monitorEventLoopDelay({ resolution: 10 });
        benchLoop.enable();
        // Stanza ids the gateway has not seen: a rate offered twice must not be taken for resent messages.
        const tag = `ol-${name}-${rate}-${results.length}-`;
        const achieved = await offer(rate, SECONDS, (i) => {
          const key = `${tag}${i}`;
          clock.sent(key, p.arrivals ?? 1);
          p.send(i, key, clock);
        });
        const backlog = clock.pending;
        const drainStart = now();
        while (clock.pending > 0 && now() - drainStart < DRAIN_MS)
          await new Promise((r) => setTimeout(r, 50));
        // Status callbacks and acknowledgements still in flight belong to this run's cost.
        await fake.idle();
        benchLoop.disable();
        const stallMs = {
          gateway: await gatewayStallMs(gw.privatePort),
          loadGenerator: benchLoop.max / 1e6,
          idleProcess: await probe.read(),
        };
        await new Promise((r) => setTimeout(r, 500));
        const after = {
          gw: await procStats(gatewayPid),
          prosody: await procStats(prosody),
          redisServer: await procStats(redisPid),
          machine: await machineJiffies(),
          bench: benchCpuMs(),
          redis: await redisCalls(redis),
        };
        const sent = Math.round(rate * SECONDS);
        const lat = clock.arrivals.map(([, latency]) => latency).sort((a, b) => a - b);
        if (TIMELINE_DIR) await writeTimeline(TIMELINE_DIR, `${name}-${rate}`, clock.arrivals);
        const result = {
          path: name,
          rate,
          achievedRate: Math.round(achieved),
          sent,
          arrived: lat.length,
          lost: clock.pending,
          errors: clock.errors,
          ...(clock.errorSamples.length > 0 ? { errorSamples: clock.errorSamples } : {}),
          ...(lat.length < sent && clock.unmatchedSamples.length > 0
            ? { unmatchedSamples: clock.unmatchedSamples }
            : {}),
          backlogWhenSendingStopped: backlog,
          latencyMs: {
            p50: +percentile(lat, 50).toFixed(1),
            p99: +percentile(lat, 99).toFixed(1),
            p999: +percentile(lat, 99.9).toFixed(1),
          },
          ...(clock.arrivals.length > 0 ? { slow: slowMessages(clock.arrivals) } : {}),
          // The longest event-loop stall in the row (sampled every 10 ms: ±10 ms).
          longestStallMs: {
            gateway: stallMs.gateway,
            loadGenerator: +stallMs.loadGenerator.toFixed(1),
            // The same for a process that does nothing: what the machine alone does to a process.
            idleProcess: stallMs.idleProcess,
          },
          gatewayCpuMsPerMessage: +((after.gw.cpuMs - before.gw.cpuMs) / sent).toFixed(3),
          // How much of it the kernel spent for the gateway (system calls: every read and write to a peer).
          gatewaySystemPercent: Math.round(
            (100 * (after.gw.systemMs - before.gw.systemMs)) / Math.max(1, after.gw.cpuMs - before.gw.cpuMs),
          ),
          // How often the gateway's event loop slept and was woken, per message: each wake-up has a fixed cost
          // here (bench/roundtrip.ts), whatever the code does once awake.
          gatewayWakeUpsPerMessage: +((after.gw.wakeUps - before.gw.wakeUps) / sent).toFixed(2),
          // Its writes to peers (Redis, the XMPP server, the HTTP and SMTP peers) per message: each wakes a peer.
          gatewayWritesPerMessage: +((after.gw.writes - before.gw.writes) / sent).toFixed(2),
          gatewayRssMiB: +(after.gw.rssKiB / 1024).toFixed(1),
          prosodyCpuMsPerMessage: +((after.prosody.cpuMs - before.prosody.cpuMs) / sent).toFixed(3),
          redisCpuMsPerMessage: +((after.redisServer.cpuMs - before.redisServer.cpuMs) / sent).toFixed(3),
          benchCpuMsPerMessage: +((after.bench - before.bench) / sent).toFixed(3),
          // How busy the whole machine was from the first send to the end of the drain: near 100 %, the
          // latency and backlog say more about the 2 cores than about the gateway.
          machineBusyPercent: Math.round(
            (100 * (after.machine.busy - before.machine.busy)) /
              Math.max(1, after.machine.total - before.machine.total),
          ),
          redisCommandsPerMessage: redisPerMessage(before.redis, after.redis, sent).total,
          redisTopCommandsPerMessage: redisPerMessage(before.redis, after.redis, sent).top,
        };
        console.error(JSON.stringify(result));
        results.push(result);
      }
    }
    // A profiled gateway runs slower: its figures are not the benchmark's.
    if (!PROFILE_DIR && !TRACE)
      await saveResult(process.env.BENCH_OPENLOOP_RESULT ?? "openloop", {
        nodeOptions: GATEWAY_NODE_OPTIONS,
        prosodyNagle: PROSODY_NAGLE,
        gateway: process.env.BENCH_OPENLOOP_LABEL ?? (GATEWAY_COMMAND ? GATEWAY_COMMAND : gitHead()),
        date: new Date().toISOString(),
        machine: machine(),
        seconds: SECONDS,
        fanout: FANOUT,
        warmup: WARMUP,
        drainMs: DRAIN_MS,
        gatewayIdle: idle,
        results,
      });
  } finally {
    probe.stop();
    mailer.close();
    observer.close();
    for (const u of [sender, receiver, ...members]) await u.xmpp.stop().catch(() => undefined);
    await gw.kill("SIGTERM");
    await fake.stop();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    redis.disconnect();
    await dns.stop();
    await bed.stop();
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
  }
  if (PROFILE_DIR) await flameGraphs(PROFILE_DIR, `${PATHS.join("+")} at ${RATES.join(", ")} msg/s`);
}

/**
 * The profile the gateway wrote into `dir` (at its exit), renamed after the paths and rates, and its flame graph
 * next to it (the .svg is what bench/results keeps; .cpuprofile files are not committed).
 */
async function flameGraphs(dir: string, title: string): Promise<void> {
  const name = path.join(dir, `${PATHS.join("+")}-${RATES.join("+")}`);
  for (const file of await readdir(dir)) {
    if (!file.startsWith("CPU.") || !file.endsWith(".cpuprofile")) continue;
    await rename(path.join(dir, file), `${name}.cpuprofile`);
    const profile = JSON.parse(await readFile(`${name}.cpuprofile`, "utf8")) as Profile;
    await writeFile(`${name}.svg`, renderSvg(callTree(profile), title));
    console.error(`flame graph: ${name}.svg`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
