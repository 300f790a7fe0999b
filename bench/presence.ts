/**
 * Start-up with many registered users: the compiled gateway (echo adapter) against Prosody and Redis, with
 * BENCH_USERS registrations (default 100,000) generated into Redis. For each run: time from spawn to /readyz
 * 200, RSS at ready and its peak over the broadcast window beside a run with no users, how many gateway
 * presences left in that window, and Prosody's CPU over it (what the XMPP server pays for the broadcast).
 *
 * Runs: "none" (0 users), "paced" (the default xmpp.presencePerSecond, over WINDOW_SECONDS), "fast"
 * (presencePerSecond 100,000, until the broadcast ends). BENCH_PRESENCE_BASELINE=/path/to/main.js also runs an
 * older build (which takes no presencePerSecond) with the same users.
 *
 * Run: `npx tsx bench/presence.ts` (writes bench/results/presence.json).
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { startBed, type Bed } from "../test/bed/index.js";
import { ensureDist, GATEWAY_MAIN } from "../test/support/dist.js";
import { spawnGateway } from "../test/support/process.js";
import { machine, procStats, saveResult, waitReady } from "./lib.js";

const USERS = Number(process.env.BENCH_USERS ?? 100_000);
/** How long the paced broadcast is watched (it takes USERS / presencePerSecond seconds in all). */
const WINDOW_SECONDS = Number(process.env.BENCH_WINDOW_SECONDS ?? 20);
const SECRET = "bench-presence-secret";
const DOMAIN = "echo.bench";
const SAMPLE_MS = 250;

interface Run {
  label: string;
  main: string;
  users: number;
  presencePerSecond?: number;
  /** Watch until the gateway logs the end of its broadcast instead of for WINDOW_SECONDS. */
  untilDone?: boolean;
}

/** Prosody's pid: the newest process whose command line names the bed's Prosody config. */
function prosodyPid(bed: Bed): number {
  const out = execFileSync("pgrep", ["-n", "-f", `prosody.*${bed.dir}`], { encoding: "utf8" }).trim();
  return Number(out);
}

async function seed(redis: Redis, prefix: string, users: number): Promise<void> {
  const key = `${prefix}reg:echo`;
  await redis.del(key);
  const record = JSON.stringify({ v: 1, at: new Date().toISOString(), fields: { nick: "bench" } });
  for (let i = 0; i < users; i += 10_000) {
    const fields: string[] = [];
    for (let j = i; j < Math.min(users, i + 10_000); j++) fields.push(`user${j}@localhost`, record);
    await redis.hset(key, ...fields);
  }
}

async function measure(run: Run, bed: Bed, redis: Redis, dir: string) {
  const prefix = `bench-presence-${run.label}:`;
  await seed(redis, prefix, run.users);
  const prosody = prosodyPid(bed);
  const started = performance.now();
  const gw = await spawnGateway({
    dir,
    name: run.label,
    command: run.main,
    env: {
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
      GW_SECRET: SECRET,
      LOG_LEVEL: "info",
    },
    config: {
      xmpp: {
        service: `xmpp://127.0.0.1:${bed.prosody!.componentPort}`,
        serverDomains: ["localhost"],
        ...(run.presencePerSecond ? { presencePerSecond: run.presencePerSecond } : {}),
      },
      redis: { url: bed.redis!.url, keyPrefix: prefix },
      log: { level: "info" },
      adapters: { echo: { enabled: true, domain: DOMAIN, secretEnv: "GW_SECRET" } },
    },
  });
  try {
    await waitReady(gw.privatePort, { pollMs: 50 });
    const readyMs = Math.round(performance.now() - started);
    const atReady = await procStats(gw.pid);
    const prosodyBefore = await procStats(prosody);
    const windowStart = performance.now();
    let peakKiB = atReady.rssKiB;
    const done = () =>
      gw.lines.find((l) => l.msg === "gateway presence sent to registered users" && l.type === "available");
    for (;;) {
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
      peakKiB = Math.max(peakKiB, (await procStats(gw.pid)).rssKiB);
      const elapsed = performance.now() - windowStart;
      if (run.untilDone ? done() !== undefined || elapsed > 600_000 : elapsed >= WINDOW_SECONDS * 1000) break;
      if (!run.untilDone && run.users > 0 && done()) break;
    }
    const windowMs = Math.round(performance.now() - windowStart);
    const prosodyAfter = await procStats(prosody);
    const end = done();
    const result = {
      label: run.label,
      main: run.main,
      users: run.users,
      presencePerSecond: run.presencePerSecond ?? null,
      readyMs,
      rssAtReadyMiB: +(atReady.rssKiB / 1024).toFixed(1),
      rssPeakMiB: +(peakKiB / 1024).toFixed(1),
      windowMs,
      broadcastDone: end !== undefined,
      presencesSent: typeof end?.users === "number" ? end.users : null,
      prosodyCpuMs: prosodyAfter.cpuMs - prosodyBefore.cpuMs,
    };
    console.error(JSON.stringify(result));
    return result;
  } finally {
    await gw.kill("SIGKILL");
    await redis.del(`${prefix}reg:echo`);
  }
}

async function main(): Promise<void> {
  ensureDist();
  const dir = await mkdtemp(path.join(tmpdir(), "bench-presence-"));
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    components: [{ domain: DOMAIN, secret: SECRET }],
  });
  const redis = new Redis(bed.redis!.url);
  try {
    const runs: Run[] = [
      { label: "none", main: GATEWAY_MAIN, users: 0 },
      { label: "paced", main: GATEWAY_MAIN, users: USERS },
      { label: "fast", main: GATEWAY_MAIN, users: USERS, presencePerSecond: 100_000, untilDone: true },
    ];
    const baseline = process.env.BENCH_PRESENCE_BASELINE;
    if (baseline) runs.push({ label: "baseline", main: baseline, users: USERS, untilDone: true });
    const results = [];
    for (const run of runs) results.push(await measure(run, bed, redis, dir));
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    };
    await saveResult("presence", {
      date: new Date().toISOString(),
      machine: machine(),
      version: pkg.version,
      users: USERS,
      windowSeconds: WINDOW_SECONDS,
      results,
    });
  } finally {
    redis.disconnect();
    await bed.stop();
    if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
