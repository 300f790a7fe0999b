/**
 * Pieces every benchmark shares: the machine description, windowed sending, percentiles, Prosody's raw echo
 * rate (the yardstick each benchmark measures in its own run), a bare IRC client, and CPU/RSS of a process
 * read from /proc.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import { createConnection, type Socket } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { component, xml as cxml, type Element as CElement } from "@xmpp/component";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { pino } from "pino";
import type { XmppPeer } from "../test/bed/index.js";
import type { Gateway } from "../src/gateway.js";
import type { LoadedConfig } from "../src/config/load.js";
import { ensureDist } from "../test/support/dist.js";
import { spawnGateway, type GatewayProcess } from "../test/support/process.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export function machine() {
  return {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadAverage1m: +(loadavg()[0] ?? 0).toFixed(2),
  };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/**
 * Where a row's slow messages were: how many took longer than `overMs`, and in how many of the row's windows of
 * `windowMs` (by send time) they were sent. A few windows: bursts, a stall of some process delaying every
 * message behind it; as many windows as messages: spread over the row, the per-message path itself.
 */
export function slowMessages(
  arrivals: readonly (readonly [sentAt: number, latency: number])[],
  overMs = 10,
  windowMs = 100,
): { overMs: number; count: number; windows: number; ofWindows: number } {
  const first = Math.min(...arrivals.map(([sentAt]) => sentAt));
  const last = Math.max(...arrivals.map(([sentAt]) => sentAt));
  const slow = arrivals.filter(([, latency]) => latency > overMs);
  const windows = new Set(slow.map(([sentAt]) => Math.floor((sentAt - first) / windowMs)));
  return {
    overMs,
    count: slow.length,
    windows: windows.size,
    ofWindows: Math.floor((last - first) / windowMs) + 1,
  };
}

/** The least, the median and the greatest of a few measurements (rounded), as the failover benchmarks report them. */
export function minMedianMax(values: number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    min: Math.round(sorted[0] ?? NaN),
    median: Math.round(sorted[Math.floor(sorted.length / 2)] ?? NaN),
    max: Math.round(sorted[sorted.length - 1] ?? NaN),
  };
}

/** p50 and p99 of a list of milliseconds, rounded to 0.1 ms. */
export function latencySummary(ms: number[]): { p50: number; p99: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: +percentile(sorted, 50).toFixed(1), p99: +percentile(sorted, 99).toFixed(1) };
}

/** Runs `n` items with at most `window` outstanding; `start(i)` resolves when item i is done. Returns ms. */
export async function windowed(
  n: number,
  window: number,
  start: (i: number) => Promise<void>,
): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) await start(next++);
    }),
  );
  return performance.now() - t0;
}

/** Resolves promises by key when a stanza with that id or body arrives at `user`. */
export function stanzaWaiter(user: Client): (key: string) => Promise<void> {
  const waiting = new Map<string, () => void>();
  user.on("stanza", (el: Element) => {
    for (const key of [el.attrs.id ?? "", el.getChildText("body") ?? ""]) {
      waiting.get(key)?.();
      waiting.delete(key);
    }
  });
  return (key) => new Promise<void>((resolve) => waiting.set(key, resolve));
}

/**
 * Prosody's raw echo, no gateway in between: `user` sends `n` messages (`window` in flight) to a bare
 * component on `domain` that answers each at once. Messages/s and per-message round trip.
 */
export async function rawEcho(opts: {
  peer: XmppPeer;
  domain: string;
  secret: string;
  user: Client;
  expect: (key: string) => Promise<void>;
  n: number;
  window: number;
}): Promise<{ perSecond: number; roundTripMs: { p50: number; p99: number } }> {
  const raw = component({
    service: `xmpp://127.0.0.1:${opts.peer.componentPort}`,
    domain: opts.domain,
    password: opts.secret,
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
  const rtt: number[] = [];
  const ms = await windowed(opts.n, opts.window, async (i) => {
    const done = opts.expect(`raw-${i}`);
    const t = performance.now();
    await opts.user.send(xml("message", { to: `echo@${opts.domain}`, id: `raw-${i}` }, xml("body", {}, "x")));
    await done;
    rtt.push(performance.now() - t);
  });
  await raw.stop();
  return { perSecond: Math.round((opts.n / ms) * 1000), roundTripMs: latencySummary(rtt) };
}

/**
 * CPU time (user + system, ms; `systemMs` the part spent in the kernel on the process's behalf: system calls,
 * page faults), resident memory (KiB), wake-ups and writes of a process, from /proc. `wakeUps` counts the times its
 * main thread went to sleep of its own accord (voluntary context switches): for a Node process, each time the
 * event loop found nothing to do and waited for a socket or a timer. `writes`: its write system calls (write,
 * writev: every write to a socket, each one handing data to a peer).
 */
export async function procStats(
  pid: number,
): Promise<{ cpuMs: number; systemMs: number; rssKiB: number; wakeUps: number; writes: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const user = Number(fields[11]); // utime, stime: fields 14 and 15 of stat
  const system = Number(fields[12]);
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const wakeUps = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
  // Readable by the process's own user (or root) only.
  const io = await readFile(`/proc/${pid}/io`, "utf8").catch(() => "");
  const writes = Number(/^syscw:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
  return { cpuMs: (user + system) * 10, systemMs: system * 10, rssKiB, wakeUps, writes }; // USER_HZ is 100 on Linux
}

/** Writes `bench/results/<name>.json`. */
export async function saveResult(name: string, result: unknown): Promise<void> {
  await mkdir(new URL("results/", import.meta.url), { recursive: true });
  await writeFile(new URL(`results/${name}.json`, import.meta.url), JSON.stringify(result, null, 2) + "\n");
}

/** A bare IRC client: records PRIVMSG lines, answers PING. */
export class IrcClient {
  private buffer = "";
  private listeners: ((line: string) => void)[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.setNoDelay(true);
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      const parts = this.buffer.split("\r\n");
      this.buffer = parts.pop() ?? "";
      for (const line of parts) {
        if (line.startsWith("PING ")) this.send(`PONG ${line.slice(5)}`);
        for (const l of this.listeners) l(line);
      }
    });
  }

  static async connect(port: number, nick: string): Promise<IrcClient> {
    const socket = createConnection({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const irc = new IrcClient(socket);
    const welcome = irc.next((l) => / 001 /.test(l));
    irc.send(`NICK ${nick}`);
    irc.send(`USER ${nick} 0 * :bench`);
    await welcome;
    return irc;
  }

  onLine(fn: (line: string) => void): void {
    this.listeners.push(fn);
  }

  next(match: (line: string) => boolean): Promise<string> {
    return new Promise((resolve) => {
      const fn = (line: string) => {
        if (!match(line)) return;
        this.listeners = this.listeners.filter((l) => l !== fn);
        resolve(line);
      };
      this.listeners.push(fn);
    });
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Starts the compiled gateway (dist/, built first when stale) in this process (warnings only, to stderr)
 * and waits for `adapter`'s component stream.
 */
export async function startBenchGateway(loaded: LoadedConfig, adapter: string): Promise<Gateway> {
  ensureDist();
  const dist = (file: string) => pathToFileURL(path.join(ROOT, "dist/src", file)).href;
  const { createGateway } = (await import(dist("compose.js"))) as typeof import("../src/compose.js");
  const { createLogger } = (await import(dist("log.js"))) as typeof import("../src/log.js");
  const gateway = await createGateway(
    loaded,
    createLogger({ level: "warn", destination: pino.destination(2) }),
  );
  await gateway.start();
  await gateway.services.get(adapter)!.ctx.link.waitOnline();
  return gateway;
}

/** Registers `user` with `domain` (XEP-0077 with a data form of `fields`) and waits for the answer. */
export async function registerWith(
  user: Client,
  waitFor: (key: string) => Promise<void>,
  domain: string,
  fields: Record<string, string>,
): Promise<void> {
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    ...Object.entries(fields).map(([name, value]) => xml("field", { var: name }, xml("value", {}, value))),
  );
  const done = waitFor("reg");
  await user.send(
    xml("iq", { type: "set", to: domain, id: "reg" }, xml("query", { xmlns: "jabber:iq:register" }, form)),
  );
  await done;
}

/** Waits until a spawned gateway's /readyz (on its private port) answers 200; `pollMs` sets the precision. */
export async function waitReady(privatePort: number, opts: { pollMs?: number; timeoutMs?: number } = {}) {
  const { pollMs = 100, timeoutMs = 60_000 } = opts;
  for (const end = Date.now() + timeoutMs; ;) {
    const ready = await fetch(`http://127.0.0.1:${privatePort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return;
    if (Date.now() > end) throw new Error(`the gateway was not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The benchmarks' XMPP user: registered on `peer`, online with presence, and a waiter for its stanzas. */
export async function benchUser(
  peer: XmppPeer,
): Promise<{ user: Client; expect: (key: string) => Promise<void> }> {
  await peer.registerUser("bench", "bench");
  const user = client({
    service: `xmpp://127.0.0.1:${peer.c2sPort}`,
    domain: "localhost",
    username: "bench",
    password: "bench",
    resource: "b",
  });
  const expect = stanzaWaiter(user);
  await user.start();
  await user.send(xml("presence"));
  return { user, expect };
}

/** Node options for a gateway whose heap the benchmark reads: `global.gc` for the SIGUSR2 hook in main.ts. */
export const GC_NODE_OPTIONS = "--expose-gc";

/**
 * Forces a full garbage collection in a gateway started with GC_NODE_OPTIONS (SIGUSR2, see main.ts) and
 * returns what its log line reports: V8 heap used and RSS right after, in MiB.
 */
export async function heapAfterGc(gw: {
  child: { kill(signal: NodeJS.Signals): boolean };
  lines: Record<string, unknown>[];
  waitLog(
    text: string,
    opts?: { timeoutMs?: number; where?: (line: Record<string, unknown>) => boolean },
  ): Promise<Record<string, unknown>>;
}): Promise<{ heapUsedMiB: number; rssMiB: number }> {
  const before = gw.lines.length;
  gw.child.kill("SIGUSR2");
  const line = await gw.waitLog("memory after a forced garbage collection", {
    timeoutMs: 60_000,
    where: (l) => gw.lines.indexOf(l) >= before,
  });
  const memory = line.memory as { heapUsed: number; rss: number };
  const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
  if (process.env.BENCH_GC_DETAIL) console.error(JSON.stringify(line.memory));
  return { heapUsedMiB: mib(memory.heapUsed), rssMiB: mib(memory.rss) };
}

/** Runs a benchmark's main and exits with its outcome (open sockets would keep the process alive). */
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

/**
 * An echo-only gateway process (instance id = `name`, secret from GW_SECRET) on `peer`'s component port, for
 * the benchmarks that kill instances; `xmpp` adds to the xmpp section.
 */
export function spawnEchoGateway(opts: {
  dir: string;
  name: string;
  peer: XmppPeer;
  redisUrl: string;
  keyPrefix: string;
  domain: string;
  secret: string;
  xmpp: Record<string, unknown>;
}): Promise<GatewayProcess> {
  return spawnGateway({
    dir: opts.dir,
    name: opts.name,
    env: { GW_SECRET: opts.secret },
    config: {
      xmpp: {
        service: `xmpp://127.0.0.1:${opts.peer.componentPort}`,
        serverDomains: [opts.peer.host],
        ...opts.xmpp,
      },
      redis: { url: opts.redisUrl, keyPrefix: opts.keyPrefix },
      instanceId: opts.name,
      adapters: { echo: { domain: opts.domain, secretEnv: "GW_SECRET", requireRegistration: false } },
    },
  });
}
