/**
 * Slot takeover on ejabberd (`domain_balancing`, `component_number: 2`, `xmpp.balancing` on with its
 * defaults): two gateway processes share the domain; in each round the one that serves a user hashed to its
 * slot is killed with SIGKILL while that user messages the echo contact every PING_MS. Measures, from the kill,
 * when the survivor's extra stream is online and when the user gets the first answer again; then a fresh
 * instance starts and the time until the survivor gave the slot back and the fresh one serves it.
 * Run: `npx tsx bench/failover-ejabberd.ts` (writes bench/results/failover-ejabberd.json).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { startBed } from "../test/bed/index.js";
import { startEjabberd } from "../test/bed/ejabberd.js";
import type { GatewayProcess } from "../test/support/process.js";
import { machine, minMedianMax as summary, runBench, saveResult, spawnEchoGateway } from "./lib.js";

const ROUNDS = Number(process.env.BENCH_FAILOVER_ROUNDS ?? 5);
const PING_MS = 50;
const SECRET = "bench-secret";
const DOMAIN = "echo.balanced-failover.localhost";
/** Users, so that both slots have some (the slot of each is fixed by a hash of its JID). */
const USERS = 4;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), "bench-failover-ejabberd-"));
  await chmod(dir, 0o755); // ejabberd runs as its own user
  const bed = await startBed({ prosody: false, ejabberd: false, irc: false, components: [] });
  const peer = await startEjabberd({
    dir: path.join(dir, "ejabberd"),
    host: "localhost",
    components: [{ domain: DOMAIN, secret: SECRET, balancing: { by: "bare_source", instances: 2 } }],
  });
  /** Arrival time of each echo answer, by its body. */
  const answered = new Map<string, number>();
  const users: Client[] = [];
  for (let u = 0; u < USERS; u++) {
    await peer.registerUser(`fo${u}`, "fo");
    const user = client({
      service: `xmpp://127.0.0.1:${peer.c2sPort}`,
      domain: "localhost",
      username: `fo${u}`,
      password: "fo",
      resource: "b",
    });
    user.on("error", () => undefined);
    user.on("stanza", (el: Element) => {
      if (el.name === "message" && el.attrs.type !== "error")
        answered.set(el.getChildText("body") ?? "", performance.now());
    });
    await user.start();
    users.push(user);
  }

  let count = 0;
  const instance = async (): Promise<GatewayProcess> => {
    const gw = await spawnEchoGateway({
      dir,
      name: `gw-${++count}`,
      peer,
      redisUrl: bed.redis!.url,
      keyPrefix: "bench-failover-ejabberd:",
      domain: DOMAIN,
      secret: SECRET,
      xmpp: { balancing: { enabled: true } },
    });
    await gw.waitLog("component stream online", { timeoutMs: 60_000 });
    return gw;
  };
  /** Which instance answers user u: the echo counter of the one that handled a message. */
  const handled = (gw: GatewayProcess) =>
    gw.metric("xgw_messages_total", { adapter: "echo", direction: "out", outcome: "delivered" });
  let seq = 0;
  async function ask(u: number, timeoutMs: number): Promise<boolean> {
    const body = `p-${u}-${++seq}`;
    await users[u]!.send(xml("message", { to: `bot@${DOMAIN}`, type: "chat" }, xml("body", {}, body)));
    const until = performance.now() + timeoutMs;
    while (!answered.has(body) && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
    return answered.has(body);
  }

  const online: number[] = [];
  const answering: number[] = [];
  const givenBack: number[] = [];
  let gateways = [await instance(), await instance()];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Pick a user of the instance to kill (the second): the first message shows who served it.
      const victim = gateways[1]!;
      let user = -1;
      for (let u = 0; u < USERS && user < 0; u++) {
        const before = await handled(victim);
        await ask(u, 5_000);
        await new Promise((r) => setTimeout(r, 100));
        if ((await handled(victim)) > before) user = u;
      }
      if (user < 0) throw new Error("no user is served by the instance to kill; add users");
      const killedAtWall = Date.now();
      const killedAt = performance.now();
      await victim.kill("SIGKILL");
      const survivor = gateways[0]!;
      for (;;) {
        if (await ask(user, PING_MS)) break;
        if (performance.now() - killedAt > 120_000) throw new Error("never served again");
      }
      answering.push(performance.now() - killedAt);
      const up = await survivor.waitLog("serving a dead instance's slot", {
        timeoutMs: 60_000,
        where: (l) => Number(l.time) >= killedAtWall,
      });
      online.push(Number(up.time) - killedAtWall);
      const freshAt = Date.now();
      const fresh = await instance();
      const back = await survivor.waitLog("gave a dead instance's slots back", {
        where: (l) => Number(l.time) >= freshAt,
      });
      givenBack.push(Number(back.time) - freshAt);
      console.error(
        `round ${round + 1}: extra stream online after ${online.at(-1)} ms, answers again after ` +
          `${answering.at(-1)?.toFixed(0)} ms; slot given back ${givenBack.at(-1)} ms after the fresh start`,
      );
      gateways = [survivor, fresh];
    }
    const result = {
      date: new Date().toISOString(),
      machine: machine(),
      pingEveryMs: PING_MS,
      rounds: ROUNDS,
      heartbeatSeconds: 2,
      deadAfterSeconds: 10,
      extraStreamOnlineMs: summary(online),
      firstAnswerAfterKillMs: summary(answering),
      givenBackAfterFreshStartMs: summary(givenBack),
    };
    console.log(JSON.stringify(result, null, 2));
    await saveResult("failover-ejabberd", result);
  } finally {
    await Promise.all(gateways.map((g) => g.kill("SIGTERM")));
    await Promise.all(users.map((u) => u.stop().catch(() => undefined)));
    await peer.stop();
    await bed.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runBench(main);
