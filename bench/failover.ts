/**
 * Hot-standby takeover on Prosody: two gateway processes for one domain, the active one killed with SIGKILL
 * while a user messages the echo contact every PING_MS. Measures, per round, when the standby's component
 * stream is online and when the user gets the first answer again (both from the kill), for the default
 * xmpp.conflictRetrySeconds (5) and for 1 s. Prosody refuses the standby's connection (conflict) while the
 * active one holds the domain, so the takeover time is bounded by that retry interval.
 * Run: `npx tsx bench/failover.ts` (writes bench/results/failover.json).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { client, xml, type Element } from "@xmpp/client";
import { startBed } from "../test/bed/index.js";
import type { GatewayProcess } from "../test/support/process.js";
import { machine, minMedianMax as summary, runBench, saveResult, spawnEchoGateway } from "./lib.js";

const ROUNDS = Number(process.env.BENCH_FAILOVER_ROUNDS ?? 5);
const PING_MS = 50;
const SECRET = "bench-secret";
const DOMAIN = "echo.failover.localhost";

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "bench-failover-"));
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    components: [{ domain: DOMAIN, secret: SECRET }],
  });
  const peer = bed.prosody!;
  await peer.registerUser("fo", "fo");
  const user = client({
    service: `xmpp://127.0.0.1:${peer.c2sPort}`,
    domain: "localhost",
    username: "fo",
    password: "fo",
    resource: "b",
  });
  user.on("error", () => undefined);
  /** Arrival time of each echo answer, by the number in its body. */
  const answered = new Map<number, number>();
  const sentAt = new Map<number, number>();
  user.on("stanza", (el: Element) => {
    const m = /^p-(\d+)$/.exec(el.getChildText("body") ?? "");
    if (el.name === "message" && el.attrs.type !== "error" && m?.[1])
      answered.set(Number(m[1]), performance.now());
  });
  await user.start();

  let seq = 0;
  let count = 0;
  const instance = (retrySeconds: number) =>
    spawnEchoGateway({
      dir,
      name: `gw-${++count}`,
      peer,
      redisUrl: bed.redis!.url,
      keyPrefix: "bench-failover:",
      domain: DOMAIN,
      secret: SECRET,
      xmpp: { conflictRetrySeconds: retrySeconds },
    });

  const results: Record<string, unknown> = {};
  try {
    for (const retrySeconds of [5, 1]) {
      let active: GatewayProcess = await instance(retrySeconds);
      await active.waitLog("component stream online");
      let standby: GatewayProcess = await instance(retrySeconds);
      await standby.waitLog("hot standby");
      const online: number[] = [];
      const answering: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Let the standby settle into its retry rhythm, as it would in production.
        await new Promise((r) => setTimeout(r, 1000 + Math.random() * retrySeconds * 1000));
        const pinger = setInterval(() => {
          const k = ++seq;
          sentAt.set(k, performance.now());
          void user.send(xml("message", { to: `bot@${DOMAIN}`, type: "chat" }, xml("body", {}, `p-${k}`)));
        }, PING_MS);
        await new Promise((r) => setTimeout(r, 500));
        const firstAfter = seq + 1;
        const killedAtWall = Date.now();
        const killedAt = performance.now();
        await active.kill("SIGKILL");
        const up = await standby.waitLog("component stream online", {
          timeoutMs: 60_000,
          where: (l) => Number(l.time) >= killedAtWall,
        });
        online.push(Number(up.time) - killedAtWall);
        for (;;) {
          const first = [...answered.entries()].filter(([k]) => k >= firstAfter).map(([, t]) => t);
          if (first.length > 0) {
            answering.push(Math.min(...first) - killedAt);
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        clearInterval(pinger);
        console.error(
          `retry ${retrySeconds} s, round ${round + 1}: standby online after ${online.at(-1)} ms, ` +
            `answers again after ${answering.at(-1)?.toFixed(0)} ms`,
        );
        active = standby;
        standby = await instance(retrySeconds);
        await standby.waitLog("hot standby");
      }
      await Promise.all([active.kill("SIGTERM"), standby.kill("SIGTERM")]);
      results[`conflictRetry${retrySeconds}s`] = {
        rounds: ROUNDS,
        standbyOnlineMs: summary(online),
        firstAnswerAfterKillMs: summary(answering),
      };
    }
    const result = { date: new Date().toISOString(), machine: machine(), pingEveryMs: PING_MS, ...results };
    console.log(JSON.stringify(result, null, 2));
    await saveResult("failover", result);
  } finally {
    await user.stop().catch(() => undefined);
    await bed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runBench(main);
