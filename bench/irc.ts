/**
 * IRC benchmark: N XMPP users in one IRC channel through the gateway, and through biboumi (the reference IRC
 * gateway, Debian package `biboumi`, installed when missing) side by side against the same Prosody and the
 * same ngircd. For each N: resident memory per bridged IRC connection, CPU per XMPP → IRC message (one user
 * alone in a channel with a plain IRC client), CPU per IRC → XMPP stanza and the fan-out rate (a plain IRC
 * client talks to the channel of N users), and Prosody's raw echo rate measured in the same run.
 * Only the public behaviour over XMPP is used: join `#chan%server@domain/nick`, groupchat messages.
 * Run: `npx tsx bench/irc.ts` (writes bench/results/irc.json). BENCH_IRC_SIZES=10,100,1000 sets the Ns.
 * Footprint at large N: `BENCH_IRC_SIZES=1000,10000 BENCH_IRC_IMPLS=gateway BENCH_IRC_RESULT=irc-footprint`.
 * Burst peak: `BENCH_IRC_SIZES=100 BENCH_IRC_IMPLS=gateway BENCH_IRC_BURST_LINES=1000` (bench/results/irc-burst.json).
 */
import path from "node:path";
import { xml, type Element } from "@xmpp/client";
import { spawnGateway } from "../test/support/process.js";
import {
  GC_NODE_OPTIONS,
  heapAfterGc,
  IrcClient,
  latencySummary,
  machine,
  procStats,
  rawEcho,
  runBench,
  saveResult,
  stanzaWaiter,
  windowed,
} from "./lib.js";
import {
  BIBOUMI,
  GATEWAY,
  IRC_NAME,
  IRC_PORT,
  SECRET,
  ircAdapterConfig,
  join,
  loginUsers,
  settle,
  startBiboumi,
  startIrcBench,
  waitComponent,
  type User,
} from "./irc-bed.js";

const SIZES = (process.env.BENCH_IRC_SIZES ?? "10,100,1000").split(",").map(Number);
/**
 * BENCH_IRC_BURST_LINES=1000: instead of the usual measurements, the peak under a burst: N users in one
 * channel, the observer says this many lines at once (lines × N stanzas), RSS sampled every
 * BURST_SAMPLE_MS until every user got every line.
 */
const BURST_LINES = Number(process.env.BENCH_IRC_BURST_LINES ?? 0);
const BURST_SAMPLE_MS = 100;
const BURST_PROBE_MS = 8000;
/** BENCH_IRC_SNAPSHOT=DIR: a heap snapshot of the gateway once the N users joined (see bench/heap-summary.ts). */
const SNAPSHOT_DIR = process.env.BENCH_IRC_SNAPSHOT;
/** Stanzas a second the burst must at least keep up, or it is reported as failed. */
const BURST_MIN_RATE = 100;
/** Which implementations run (BENCH_IRC_IMPLS=gateway skips biboumi). */
const IMPLS = (process.env.BENCH_IRC_IMPLS ?? "gateway,biboumi").split(",");
/** XMPP → IRC messages per measurement, and how many are in flight. */
const OUT_MESSAGES = Number(process.env.BENCH_IRC_OUT ?? 200);
/**
 * biboumi paces each IRC connection to about one line a second after a short burst (its flood control,
 * on by default), so it gets fewer messages: CPU per message is still comparable, its rate is not.
 */
const BIBOUMI_OUT_MESSAGES = Number(process.env.BENCH_IRC_BIBOUMI_OUT ?? 20);
const OUT_WINDOW = 10;
/** IRC → XMPP: about this many stanzas per measurement (lines × N). */
const FANOUT_STANZAS = 2000;
/**
 * Above this N only memory is measured, with the users spread over channels of MEMORY_CHANNEL_SIZE: in one
 * channel every join is announced to every member, so N joins cost N²/2 presences (half a million for 1,000).
 */
const FANOUT_MAX_N = 100;
const MEMORY_CHANNEL_SIZE = 50;

interface Impl {
  name: "gateway" | "biboumi";
  outMessages: number;
  domain: string;
  /** How the IRC server is named in the room JID. */
  server: string;
  start(): Promise<{
    pid: number;
    stop(): Promise<void>;
    /** V8 heap used and RSS after a forced full GC (the gateway only). */
    heapAfterGc?(): Promise<{ heapUsedMiB: number; rssMiB: number }>;
    /** Writes a heap snapshot (the gateway, with SNAPSHOT_DIR). */
    snapshot?(): Promise<void>;
  }>;
}

async function measure(impl: Impl, users: User[], n: number, observer: IrcClient, tag: string) {
  const proc = await impl.start();
  try {
    await waitComponent(users[0]!, impl.domain);
    await settle();
    const base = await procStats(proc.pid);
    const baseGc = await proc.heapAfterGc?.();

    // 1. Memory: N users join one channel (N IRC connections), or channels of MEMORY_CHANNEL_SIZE above FANOUT_MAX_N.
    const channel = `#b${tag}`;
    observer.send(`JOIN ${channel}`);
    const room = `${channel}%${impl.server}@${impl.domain}`;
    const members = users.slice(0, n);
    const joinStart = performance.now();
    if (n <= FANOUT_MAX_N) await join(members, room);
    else
      for (let c = 0; c * MEMORY_CHANNEL_SIZE < n; c++)
        await join(
          members.slice(c * MEMORY_CHANNEL_SIZE, (c + 1) * MEMORY_CHANNEL_SIZE),
          `#m${tag}c${c}%${impl.server}@${impl.domain}`,
        );
    const joinMs = performance.now() - joinStart;
    await settle(3000);
    const joined = await procStats(proc.pid);
    const rssPerConnectionKiB = Math.round((joined.rssKiB - base.rssKiB) / n);
    const joinedGc = await proc.heapAfterGc?.();
    await proc.snapshot?.();
    const memory = {
      n,
      channels: n <= FANOUT_MAX_N ? 1 : Math.ceil(n / MEMORY_CHANNEL_SIZE),
      baseRssMiB: +(base.rssKiB / 1024).toFixed(1),
      joinedRssMiB: +(joined.rssKiB / 1024).toFixed(1),
      rssPerConnectionKiB,
      joinSeconds: +(joinMs / 1000).toFixed(1),
      ...(baseGc && joinedGc
        ? {
            afterGc: {
              baseHeapMiB: baseGc.heapUsedMiB,
              baseRssMiB: baseGc.rssMiB,
              joinedHeapMiB: joinedGc.heapUsedMiB,
              joinedRssMiB: joinedGc.rssMiB,
              heapPerConnectionKiB: Math.round(((joinedGc.heapUsedMiB - baseGc.heapUsedMiB) * 1024) / n),
            },
          }
        : {}),
    };
    console.error(
      `${impl.name} N=${n}: joined in ${(joinMs / 1000).toFixed(1)} s, RSS ${memory.joinedRssMiB} MiB (+${rssPerConnectionKiB} KiB/conn)` +
        (joinedGc ? `, after GC heap ${joinedGc.heapUsedMiB} MiB RSS ${joinedGc.rssMiB} MiB` : ""),
    );

    if (n > FANOUT_MAX_N) return memory;

    // 2. XMPP → IRC: one user alone with the observer in another channel.
    const outChannel = `#o${tag}`;
    observer.send(`JOIN ${outChannel}`);
    const outRoom = `${outChannel}%${impl.server}@${impl.domain}`;
    await join([users[0]!], outRoom);
    await settle(500);
    const seen = new Map<string, () => void>();
    observer.onLine((line) => {
      const m = / PRIVMSG #o\S+ :(out-\S+)$/.exec(line);
      if (m?.[1]) seen.get(m[1])?.();
    });
    const outLat: number[] = [];
    const cpuOut0 = await procStats(proc.pid);
    const outMessages = impl.outMessages;
    const outMs = await windowed(outMessages, OUT_WINDOW, async (i) => {
      const body = `out-${tag}-${i}`;
      const arrived = new Promise<void>((resolve) => seen.set(body, resolve));
      const t = performance.now();
      await users[0]!.xmpp.send(
        xml("message", { to: outRoom, type: "groupchat", id: body }, xml("body", {}, body)),
      );
      await arrived;
      outLat.push(performance.now() - t);
    });
    await settle(500);
    const cpuOut1 = await procStats(proc.pid);

    // 3. IRC → XMPP fan-out: the observer talks to the channel of N users.
    const lines = Math.max(5, Math.ceil(FANOUT_STANZAS / n));
    const remaining = new Map<string, number>();
    const sentAt = new Map<string, number>();
    const fanLat: number[] = [];
    let left = lines * n;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    const handler = (el: Element) => {
      const body = el.name === "message" ? el.getChildText("body") : null;
      if (!body?.startsWith(`in-${tag}-`)) return;
      const rest = (remaining.get(body) ?? 0) - 1;
      remaining.set(body, rest);
      if (rest === 0) fanLat.push(performance.now() - sentAt.get(body)!);
      if (--left === 0) allDone();
    };
    for (const u of members) u.handlers.add(handler);
    const cpuIn0 = await procStats(proc.pid);
    const inStart = performance.now();
    for (let i = 0; i < lines; i++) {
      const body = `in-${tag}-${i}`;
      remaining.set(body, n);
      sentAt.set(body, performance.now());
      observer.send(`PRIVMSG ${channel} :${body}`);
    }
    await Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`${impl.name} N=${n}: ${left} stanzas missing after 120 s`)),
          120_000,
        ),
      ),
    ]);
    const inMs = performance.now() - inStart;
    const cpuIn1 = await procStats(proc.pid);
    for (const u of members) u.handlers.delete(handler);

    observer.send(`PART ${channel}`);
    observer.send(`PART ${outChannel}`);
    return {
      ...memory,
      xmppToIrc: {
        messages: outMessages,
        perSecond: Math.round((outMessages / outMs) * 1000),
        latencyMs: latencySummary(outLat),
        cpuMsPerMessage: +((cpuOut1.cpuMs - cpuOut0.cpuMs) / outMessages).toFixed(3),
      },
      ircToXmpp: {
        lines,
        stanzas: lines * n,
        stanzasPerSecond: Math.round(((lines * n) / inMs) * 1000),
        lineToAllMembersMs: latencySummary(fanLat),
        cpuMsPerStanza: +((cpuIn1.cpuMs - cpuIn0.cpuMs) / (lines * n)).toFixed(3),
      },
    };
  } finally {
    await proc.stop();
  }
}

/** The peak memory while N users in one channel receive BURST_LINES lines said at once on IRC. */
async function burst(impl: Impl, users: User[], n: number, observer: IrcClient, tag: string) {
  const proc = await impl.start();
  try {
    await waitComponent(users[0]!, impl.domain);
    await settle();
    const channel = `#burst${tag}`;
    observer.send(`JOIN ${channel}`);
    const members = users.slice(0, n);
    await join(members, `${channel}%${impl.server}@${impl.domain}`);
    await settle(3000);
    const before = await procStats(proc.pid);
    const stanzas = BURST_LINES * n;
    let left = stanzas;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    const handler = (el: Element) => {
      if (el.name === "message" && el.getChildText("body")?.startsWith(`in-${tag}-`) && --left === 0)
        allDone();
    };
    for (const u of members) u.handlers.add(handler);
    let peakKiB = before.rssKiB;
    const sampler = setInterval(() => {
      procStats(proc.pid).then(
        (s) => (peakKiB = Math.max(peakKiB, s.rssKiB)),
        () => undefined,
      );
    }, BURST_SAMPLE_MS);
    const start = performance.now();
    const cpu0 = before.cpuMs;
    for (let i = 0; i < BURST_LINES; i++)
      observer.send(`PRIVMSG ${channel} :in-${tag}-${i} ${"x".repeat(60)}`);
    const limitMs = Math.max(120_000, (stanzas / BURST_MIN_RATE) * 1000);
    // BENCH_GC_DETAIL: what is live during the burst (forced GCs every BURST_PROBE_MS; they lower the peak).
    if (process.env.BENCH_GC_DETAIL) {
      const probe = setInterval(() => {
        void proc.heapAfterGc?.().then((m) => console.error("mid-burst after GC", JSON.stringify(m)));
      }, BURST_PROBE_MS);
      void done.then(() => clearInterval(probe));
    }
    try {
      await Promise.race([
        done,
        new Promise((_, reject) =>
          setTimeout(
            () => reject(new Error(`${impl.name} burst N=${n}: ${left} of ${stanzas} stanzas missing`)),
            limitMs,
          ),
        ),
      ]);
    } finally {
      clearInterval(sampler);
      for (const u of members) u.handlers.delete(handler);
    }
    const ms = performance.now() - start;
    const after = await procStats(proc.pid);
    const result = {
      n,
      lines: BURST_LINES,
      stanzas,
      beforeRssMiB: +(before.rssKiB / 1024).toFixed(1),
      peakRssMiB: +(peakKiB / 1024).toFixed(1),
      afterRssMiB: +(after.rssKiB / 1024).toFixed(1),
      seconds: +(ms / 1000).toFixed(1),
      stanzasPerSecond: Math.round((stanzas / ms) * 1000),
      cpuMsPerStanza: +((after.cpuMs - cpu0) / stanzas).toFixed(3),
    };
    console.error(`${impl.name} burst: ${JSON.stringify(result)}`);
    observer.send(`PART ${channel}`);
    return result;
  } finally {
    await proc.stop();
  }
}

async function main(): Promise<void> {
  const { dir, bed, peer, stop } = await startIrcBench({
    tmpPrefix: "bench-irc-",
    info: "xmpp-gateway IRC benchmark",
    components: ["raw.localhost", GATEWAY, BIBOUMI],
  });
  const max = Math.max(...SIZES);
  try {
    await peer.registerUsers(Array.from({ length: max }, (_, i) => ({ user: `u${i}`, password: "pw" })));
    const users = await loginUsers(peer.c2sPort, max, "u");
    console.error(`${max} XMPP users logged in`);

    const expect = stanzaWaiter(users[0]!.xmpp);
    const raw = await rawEcho({
      peer,
      domain: "raw.localhost",
      secret: SECRET,
      user: users[0]!.xmpp,
      expect,
      n: 1000,
      window: 50,
    });
    console.error(`raw echo: ${raw.perSecond} msg/s`);

    let run = 0;
    const gateway: Impl = {
      name: "gateway",
      outMessages: OUT_MESSAGES,
      domain: GATEWAY,
      server: IRC_NAME,
      async start() {
        run++;
        const gw = await spawnGateway({
          dir,
          name: `gateway-${run}`,
          env: {
            GW_SECRET: SECRET,
            LOG_LEVEL: "warn",
            NODE_OPTIONS:
              (process.env.BENCH_GW_NODE_OPTIONS ?? "") +
              " " +
              (SNAPSHOT_DIR
                ? `${GC_NODE_OPTIONS} --heapsnapshot-signal=SIGTTIN --diagnostic-dir=${SNAPSHOT_DIR}`
                : GC_NODE_OPTIONS),
          },
          config: {
            xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
            redis: { url: bed.redis!.url, keyPrefix: `bench-irc-${run}:` },
            log: { level: "warn" },
            adapters: { irc: ircAdapterConfig() },
          },
        });
        return {
          pid: gw.pid,
          stop: () => gw.kill("SIGTERM"),
          heapAfterGc: () => heapAfterGc(gw),
          snapshot: SNAPSHOT_DIR
            ? async () => {
                gw.child.kill("SIGTTIN");
                await settle(20_000); // written synchronously: the process stalls meanwhile
              }
            : undefined,
        };
      },
    };
    const biboumi: Impl = {
      name: "biboumi",
      outMessages: BIBOUMI_OUT_MESSAGES,
      domain: BIBOUMI,
      server: "127.0.0.1",
      async start() {
        run++;
        return startBiboumi({
          cfg: path.join(dir, `biboumi-${run}.cfg`),
          db: path.join(dir, `biboumi-${run}.sqlite`),
          componentPort: peer.componentPort,
        });
      },
    };

    const observer = await IrcClient.connect(IRC_PORT, "observer");
    const results: Record<string, unknown[]> = { gateway: [], biboumi: [] };
    for (const n of SIZES) {
      for (const impl of [gateway, biboumi].filter((i) => IMPLS.includes(i.name))) {
        try {
          const tag = `${impl.name[0]}${n}`;
          results[impl.name]!.push(await (BURST_LINES ? burst : measure)(impl, users, n, observer, tag));
        } catch (err) {
          console.error(`${impl.name} N=${n} failed:`, err);
          results[impl.name]!.push({ n, error: (err as Error).message });
        }
        await settle(2000);
      }
    }
    observer.close();

    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      settings: {
        outMessages: { gateway: OUT_MESSAGES, biboumi: BIBOUMI_OUT_MESSAGES },
        outWindow: OUT_WINDOW,
        gateway: "lineDelayMs 0 (no flood control), log level warn",
        biboumi: "Debian package defaults (flood control on: ~1 line/s per IRC connection), log_level 2",
      },
      prosodyRawEchoPerSecond: raw.perSecond,
      prosodyRawEchoRoundTripMs: raw.roundTripMs,
      ...results,
    };
    console.log(JSON.stringify(result, null, 2));
    // BENCH_IRC_RESULT names the file (e.g. irc-footprint for a memory-only run of large Ns).
    await saveResult(process.env.BENCH_IRC_RESULT ?? (BURST_LINES ? "irc-burst" : "irc"), result);
    // The users are not stopped one by one: @xmpp/client throws from its socket handler when data arrives
    // while it closes, and a thousand closing sessions make that likely. Stopping Prosody ends them.
  } finally {
    await stop();
  }
}

runBench(main);
