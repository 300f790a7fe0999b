/**
 * What one round trip to another process costs on this machine: the floor under every figure of the open-loop
 * bench. A client (ioredis, as the gateway uses it) sends GET of a missing key to a real Redis on loopback at a
 * fixed rate, open-loop, and this process's CPU per command and Redis's are measured, as in bench/openloop.ts.
 * At a low rate each reply wakes an idle process; at a high rate the processes stay awake and replies come in
 * batches: the difference is what a message pays per round trip when traffic is light. Also the CPU of one
 * timer wake-up of an idle process, the smallest unit of that cost.
 *
 * Run: `npx tsx bench/roundtrip.ts` (writes bench/results/roundtrip.json). BENCH_ROUNDTRIP_RATES=100,500,…,
 * BENCH_ROUNDTRIP_SECONDS=5.
 */
import { Redis } from "ioredis";
import { startBed } from "../test/bed/index.js";
import { machine, percentile, procStats, saveResult } from "./lib.js";

const RATES = (process.env.BENCH_ROUNDTRIP_RATES ?? "100,500,1000,2000,5000,20000").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_ROUNDTRIP_SECONDS ?? 5);

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** CPU of one timer wake-up of an otherwise idle process (100 a second for 3 s), in µs. */
async function wakeUpCpuUs(): Promise<number> {
  const before = cpuMs();
  let ticks = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (++ticks === 300) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  return Math.round(((cpuMs() - before) * 1000) / ticks);
}

async function main(): Promise<void> {
  const bed = await startBed({ prosody: false, ejabberd: false, irc: false, components: [] });
  // As the gateway connects (src/gateway.ts): commands of one moment share a write.
  const redis = new Redis(bed.redis!.url, { enableAutoPipelining: true });
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info("server"))?.[1]);
  const results = [];
  try {
    for (let i = 0; i < 2_000; i++) await redis.get("roundtrip:warm-up");
    for (const rate of RATES) {
      const total = Math.round(rate * SECONDS);
      const latencies: number[] = [];
      const replies: Promise<unknown>[] = [];
      const before = { client: cpuMs(), redis: (await procStats(redisPid)).cpuMs };
      const start = performance.now();
      let sent = 0;
      while (sent < total) {
        const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
        for (; sent < due; sent++) {
          const at = performance.now();
          replies.push(redis.get("roundtrip:missing").then(() => latencies.push(performance.now() - at)));
        }
        // Sleep until the next one is due (polling would add wake-ups of its own).
        const next = start + (sent / rate) * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, next - performance.now())));
      }
      await Promise.all(replies);
      const after = { client: cpuMs(), redis: (await procStats(redisPid)).cpuMs };
      latencies.sort((a, b) => a - b);
      const result = {
        rate,
        achievedRate: Math.round(total / ((performance.now() - start) / 1000)),
        clientCpuUsPerRoundTrip: Math.round(((after.client - before.client) * 1000) / total),
        redisCpuUsPerRoundTrip: Math.round(((after.redis - before.redis) * 1000) / total),
        latencyMs: { p50: +percentile(latencies, 50).toFixed(2), p99: +percentile(latencies, 99).toFixed(2) },
      };
      console.error(JSON.stringify(result));
      results.push(result);
    }
    const wakeUp = await wakeUpCpuUs();
    console.error(JSON.stringify({ wakeUpCpuUs: wakeUp }));
    await saveResult("roundtrip", {
      date: new Date().toISOString(),
      machine: machine(),
      seconds: SECONDS,
      wakeUpCpuUs: wakeUp,
      results,
    });
  } finally {
    redis.disconnect();
    await bed.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
