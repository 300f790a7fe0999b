/**
 * Start-up and footprint of the compiled gateway: wall time of the CLI's `status` (against the running
 * gateway) and of `--check-config` (the example config), and the resident memory of an idle gateway with
 * every adapter on (echo, SMS, email, IRC), after IDLE_SECONDS.
 *
 * Run: `npx tsx bench/startup.ts` (writes bench/results/startup.json). BENCH_STARTUP_BASELINE=/path/to/main.js
 * measures another build as well (e.g. an older release's dist/src/main.js), beside this one. The idle gateway's
 * V8 heap is read after a forced GC; BENCH_SNAPSHOT=DIR also writes a heap snapshot of it there.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startBed } from "../test/bed/index.js";
import { freePort } from "../test/bed/ports.js";
import { ensureDist, GATEWAY_MAIN } from "../test/support/dist.js";
import { spawnGateway } from "../test/support/process.js";
import { GC_NODE_OPTIONS, heapAfterGc, machine, procStats, saveResult, waitReady } from "./lib.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Timed runs of each command (the median is reported). */
const RUNS = Number(process.env.BENCH_RUNS ?? 10);
/** How long the gateway idles, all streams up, before its memory is read. */
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const SECRET = "bench-startup-secret";
/** BENCH_SNAPSHOT=DIR: also writes a heap snapshot of the idle gateway there (see bench/heap-summary.ts). */
const SNAPSHOT_DIR = process.env.BENCH_SNAPSHOT;
const DOMAINS = { echo: "echo.bench", sms: "sms.bench", irc: "irc.bench", email: "mail.bench" };
const EXAMPLE_ENV = {
  GATEWAY_ECHO_SECRET: "x",
  GATEWAY_SMS_SECRET: "x",
  TWILIO_AUTH_TOKEN: "x",
  GATEWAY_EMAIL_SECRET: "x",
  GATEWAY_IRC_SECRET: "x",
};

/** Median wall time (ms) of `node main ARGS` over RUNS runs, after one warm-up run. */
async function wallMs(main: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const t = performance.now();
    const child = spawn(process.execPath, [main, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const [code] = (await once(child, "exit")) as [number];
    if (code !== 0) throw new Error(`${main} ${args.join(" ")} exited ${code}`);
    if (i > 0) times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)] ?? NaN);
}

async function measure(label: string, main: string, bed: Awaited<ReturnType<typeof startBed>>, dir: string) {
  const example = JSON.parse(await readFile(path.join(ROOT, "gateway.config.json"), "utf8")) as {
    adapters: Record<string, Record<string, unknown>>;
  };
  const { echo, sms, irc, email } = example.adapters;
  const gw = await spawnGateway({
    dir,
    name: label,
    // The file itself (executable, `#!/usr/bin/env -S node …`): the gateway is the process, as when installed.
    command: main,
    env: {
      // The file's `#!/usr/bin/env -S node …` must find the Node running this benchmark.
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
      GW_SECRET: SECRET,
      TWILIO_AUTH_TOKEN: "x",
      LOG_LEVEL: "warn",
      NODE_OPTIONS: SNAPSHOT_DIR
        ? `${GC_NODE_OPTIONS} --heapsnapshot-signal=SIGTTIN --diagnostic-dir=${SNAPSHOT_DIR}`
        : `${GC_NODE_OPTIONS} ${process.env.BENCH_NODE_OPTIONS ?? ""}`,
    },
    config: {
      xmpp: { service: `xmpp://127.0.0.1:${bed.prosody!.componentPort}`, serverDomains: ["localhost"] },
      redis: { url: bed.redis!.url, keyPrefix: `bench-startup-${label}:` },
      log: { level: "warn" },
      adapters: {
        echo: { ...echo, domain: DOMAINS.echo, secretEnv: "GW_SECRET" },
        sms: { ...sms, domain: DOMAINS.sms, secretEnv: "GW_SECRET" },
        irc: {
          ...irc,
          domain: DOMAINS.irc,
          secretEnv: "GW_SECRET",
          addresses: { "irc.localhost": { host: "127.0.0.1", port: bed.irc!.port, tls: false } },
        },
        email: {
          ...email,
          domain: DOMAINS.email,
          secretEnv: "GW_SECRET",
          inbound: { port: await freePort() },
        },
      },
    },
  });
  try {
    const url = `http://127.0.0.1:${gw.privatePort}`;
    await waitReady(gw.privatePort);
    // The first seconds after start (loading, connecting) are not idle: measure CPU over the second half.
    await new Promise((r) => setTimeout(r, (IDLE_SECONDS * 1000) / 2));
    const idleFrom = (await procStats(gw.pid)).cpuMs;
    await new Promise((r) => setTimeout(r, (IDLE_SECONDS * 1000) / 2));
    const idleStats = await procStats(gw.pid);
    const idleRssMiB = +(idleStats.rssKiB / 1024).toFixed(1);
    const idleCpuMsPerSecond = +((idleStats.cpuMs - idleFrom) / (IDLE_SECONDS / 2)).toFixed(1);
    const afterGc = await heapAfterGc(gw);
    if (SNAPSHOT_DIR) {
      gw.child.kill("SIGTTIN");
      await new Promise((r) => setTimeout(r, 15_000)); // written synchronously, the process stalls meanwhile
    }
    const statusMs = await wallMs(main, ["status", "--url", url]);
    const checkConfigMs = await wallMs(
      main,
      ["--check-config", "--config", path.join(ROOT, "gateway.config.json")],
      EXAMPLE_ENV,
    );
    console.error(
      `${label}: status ${statusMs} ms, --check-config ${checkConfigMs} ms, idle RSS ${idleRssMiB} MiB, idle CPU ${idleCpuMsPerSecond} ms/s, after GC heap ${afterGc.heapUsedMiB} MiB RSS ${afterGc.rssMiB} MiB`,
    );
    return {
      label,
      main: path.relative(ROOT, main),
      statusMs,
      checkConfigMs,
      idleRssMiB,
      idleCpuMsPerSecond,
      idleHeapAfterGcMiB: afterGc.heapUsedMiB,
      idleRssAfterGcMiB: afterGc.rssMiB,
    };
  } finally {
    await gw.kill("SIGTERM");
  }
}

async function main(): Promise<void> {
  ensureDist();
  const dir = await mkdtemp(path.join(tmpdir(), "bench-startup-"));
  const bed = await startBed({
    ejabberd: false,
    components: Object.values(DOMAINS).map((domain) => ({ domain, secret: SECRET })),
  });
  try {
    const builds: [string, string][] = [["compiled", GATEWAY_MAIN]];
    if (process.env.BENCH_STARTUP_BASELINE) builds.unshift(["baseline", process.env.BENCH_STARTUP_BASELINE]);
    const results = [];
    for (const [label, main] of builds) results.push(await measure(label, main, bed, dir));
    // BENCH_STARTUP_RESULT names the file (startup-footprint: the footprint section's idle figures).
    await saveResult(process.env.BENCH_STARTUP_RESULT ?? "startup", {
      date: new Date().toISOString(),
      machine: machine(),
      runs: RUNS,
      idleSeconds: IDLE_SECONDS,
      results,
    });
  } finally {
    await bed.stop();
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
