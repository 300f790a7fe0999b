/**
 * IRC channel history benchmark: 100 XMPP users in one IRC channel through the gateway, the channel's archive
 * at 20,000 lines; the latency of an XEP-0313 (MAM) query of the first page (the oldest 50 lines) and of the
 * last page (`<before/>`, the newest 50), and the Redis memory per archived line (MEMORY USAGE of the stream
 * over its length). Beside it biboumi (Debian package `biboumi`, its archive in SQLite) answers the same
 * queries for the same 100 users and 20,000 lines.
 *
 * How the archives are filled: 20 lines are said on IRC while the 100 users are in (each gateway connection
 * and each biboumi user hears them: this checks that the gateway keeps one copy, biboumi one per user), then
 * the rest is written straight into each store: for the gateway through the archive's own code
 * (adapters/irc/archive.ts, the Lua script every connection runs), for biboumi as rows of its own table
 * (muclogline_, one row per user and line, as biboumi writes them). Saying 20,000 lines on IRC would fan
 * out to two million stanzas per implementation, which measures the fan-out (see bench/irc.ts), not MAM.
 *
 * Run: `npx tsx bench/irc-mam.ts` (writes bench/results/irc-mam.json). BENCH_MAM_USERS, BENCH_MAM_LINES and
 * BENCH_MAM_QUERIES change the sizes; BENCH_MAM_IMPLS=gateway skips biboumi.
 */
import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { xml, type Element } from "@xmpp/client";
import { Redis } from "ioredis";
import { ChannelArchive, Ordinals } from "../adapters/irc/archive.js";
import { archivePolicy, ircConfigSchema } from "../adapters/irc/config.js";
import { Keys } from "../src/store/keys.js";
import { spawnGateway } from "../test/support/process.js";
import { IrcClient, latencySummary, machine, runBench, saveResult, windowed } from "./lib.js";
import {
  BIBOUMI,
  GATEWAY,
  IRC_NAME,
  IRC_PORT,
  SECRET,
  ircAdapterConfig,
  join,
  loginUsers,
  next,
  settle,
  startBiboumi,
  startIrcBench,
  waitComponent,
  type User,
} from "./irc-bed.js";

const USERS = Number(process.env.BENCH_MAM_USERS ?? 100);
const LINES = Number(process.env.BENCH_MAM_LINES ?? 20_000);
/** Queries per measurement (after WARMUP). */
const QUERIES = Number(process.env.BENCH_MAM_QUERIES ?? 50);
const WARMUP = 5;
/** Lines per MAM page, as Conversations asks. */
const PAGE = 50;
/** Lines said on IRC while the users are in (the rest is written to the stores directly). */
const LIVE_LINES = 20;
/** Lines used to measure the cost of N connections each offering the same line to the archive. */
const DEDUPE_SAMPLE = 200;
const IMPLS = (process.env.BENCH_MAM_IMPLS ?? "gateway,biboumi").split(",");
const CHANNEL = "#mam";
const KEY_PREFIX = "bench-mam:";
const NS = {
  MAM: "urn:xmpp:mam:2",
  RSM: "http://jabber.org/protocol/rsm",
} as const;
/** One MAM query: ms from sending to the iq result (every result arrives before it), and what came back. */
async function mamQuery(
  user: User,
  room: string,
  set: Element[],
): Promise<{ ms: number; results: number; fin?: Element }> {
  const id = `mam-${randomUUID()}`;
  const queryid = `q-${id}`;
  let results = 0;
  const count = (el: Element) => {
    if (el.name === "message" && el.getChild("result", NS.MAM)?.attrs.queryid === queryid) results++;
  };
  user.handlers.add(count);
  const answer = next(user, (el) => el.name === "iq" && el.attrs.id === id);
  const t0 = performance.now();
  await user.xmpp.send(
    xml(
      "iq",
      { type: "set", to: room, id },
      xml("query", { xmlns: NS.MAM, queryid }, xml("set", { xmlns: NS.RSM }, ...set)),
    ),
  );
  const iq = await answer;
  const ms = performance.now() - t0;
  user.handlers.delete(count);
  if (iq.attrs.type !== "result") throw new Error(`MAM query failed: ${iq.toString()}`);
  return { ms, results, fin: iq.getChild("fin", NS.MAM) };
}

/** QUERIES first-page and last-page queries (after WARMUP of each). */
async function measureQueries(user: User, room: string) {
  const first = () => mamQuery(user, room, [xml("max", {}, String(PAGE))]);
  const last = () => mamQuery(user, room, [xml("max", {}, String(PAGE)), xml("before")]);
  const out: Record<string, unknown> = {};
  for (const [name, run] of [
    ["firstPage", first],
    ["lastPage", last],
  ] as const) {
    for (let i = 0; i < WARMUP; i++) await run();
    const ms: number[] = [];
    let results = 0;
    let complete: string | undefined;
    for (let i = 0; i < QUERIES; i++) {
      const r = await run();
      ms.push(r.ms);
      results = r.results;
      complete = r.fin?.attrs.complete;
    }
    out[name] = { ...latencySummary(ms), results, complete: complete === "true" };
  }
  return out;
}

/** Says LIVE_LINES lines on IRC and waits until the first user got the last one. */
async function sayLive(observer: IrcClient, user: User, room: string, tag: string): Promise<void> {
  const last = next(
    user,
    (el) =>
      el.name === "message" &&
      el.attrs.from === `${room}/observer` &&
      el.getChildText("body") === `${tag} ${LIVE_LINES}`,
  );
  for (let i = 1; i <= LIVE_LINES; i++) observer.send(`PRIVMSG ${CHANNEL} :${tag} ${i}`);
  await last;
}

async function main(): Promise<void> {
  const { dir, bed, peer, stop } = await startIrcBench({
    tmpPrefix: "bench-mam-",
    info: "xmpp-gateway MAM benchmark",
    components: [GATEWAY, BIBOUMI],
  });
  const redis = new Redis(bed.redis!.url);
  const result: Record<string, unknown> = {};
  try {
    await peer.registerUsers(Array.from({ length: USERS }, (_, i) => ({ user: `m${i}`, password: "pw" })));
    const users = await loginUsers(peer.c2sPort, USERS, "m");
    const asker = users[0]!;
    const observer = await IrcClient.connect(IRC_PORT, "observer");
    const joined = observer.next((l) => / 366 /.test(l));
    observer.send(`JOIN ${CHANNEL}`);
    await joined;

    if (IMPLS.includes("gateway")) {
      const adapterConfig = ircAdapterConfig();
      const gw = await spawnGateway({
        dir,
        name: "gateway",
        env: { GW_SECRET: SECRET, LOG_LEVEL: "warn" },
        config: {
          xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: ["localhost"] },
          redis: { url: bed.redis!.url, keyPrefix: KEY_PREFIX },
          log: { level: "warn" },
          adapters: { irc: adapterConfig },
        },
      });
      try {
        await waitComponent(asker, GATEWAY);
        const room = `${CHANNEL}%${IRC_NAME}@${GATEWAY}`;
        const joinMs = await join(users, room, { noHistory: true });
        console.error(`gateway: ${USERS} users joined in ${Math.round(joinMs)} ms`);
        const policy = archivePolicy(ircConfigSchema.parse(adapterConfig), IRC_NAME);
        const archive = new ChannelArchive(redis, new Keys(KEY_PREFIX).adapterKey("irc"), () => policy);
        await sayLive(observer, asker, room, "live");
        const afterLive = await archive.length(IRC_NAME, CHANNEL);
        // N connections offering the same lines: one append and N-1 reads of the id per line.
        const offers = Array.from({ length: USERS }, () => new Ordinals());
        const t0 = performance.now();
        await windowed(DEDUPE_SAMPLE, 10, async (i) => {
          await Promise.all(
            offers.map((o) =>
              archive.record(o, IRC_NAME, CHANNEL, { nick: "observer", body: `offered ${i}` }),
            ),
          );
        });
        const dedupeMs = performance.now() - t0;
        const afterDedupe = await archive.length(IRC_NAME, CHANNEL);
        // The rest, as one connection would record them.
        const fill = LINES - afterDedupe;
        const writer = new Ordinals();
        const t1 = performance.now();
        await windowed(fill, 50, async (i) => {
          await archive.record(writer, IRC_NAME, CHANNEL, {
            nick: `nick${i % 40}`,
            body: `line ${i}: the quick brown fox jumps over the lazy dog, as IRC lines go`,
          });
        });
        const fillMs = performance.now() - t1;
        const length = await archive.length(IRC_NAME, CHANNEL);
        const bytes = Number(
          await redis.call("MEMORY", "USAGE", archive.streamKey(IRC_NAME, CHANNEL), "SAMPLES", "0"),
        );
        const queries = await measureQueries(asker, room);
        result.gateway = {
          users: USERS,
          joinMs: Math.round(joinMs),
          liveLinesSaid: LIVE_LINES,
          liveLinesArchived: afterLive,
          dedupe: {
            lines: DEDUPE_SAMPLE,
            offersPerLine: USERS,
            archived: afterDedupe - afterLive,
            scriptCallsPerSecond: Math.round((DEDUPE_SAMPLE * USERS) / (dedupeMs / 1000)),
          },
          fillLinesPerSecond: Math.round(fill / (fillMs / 1000)),
          archivedLines: length,
          streamBytes: bytes,
          bytesPerLine: Math.round(bytes / length),
          ...queries,
        };
        console.error("gateway:", JSON.stringify(result.gateway));
      } finally {
        await gw.kill("SIGTERM");
      }
      await settle(2000);
    }

    if (IMPLS.includes("biboumi")) {
      const db = path.join(dir, "biboumi.sqlite");
      const biboumi = await startBiboumi({
        cfg: path.join(dir, "biboumi.cfg"),
        db,
        componentPort: peer.componentPort,
      });
      try {
        await waitComponent(asker, BIBOUMI);
        const room = `${CHANNEL}%127.0.0.1@${BIBOUMI}`;
        const joinMs = await join(users, room, { suffix: "b", noHistory: true });
        console.error(`biboumi: ${USERS} users joined in ${Math.round(joinMs)} ms`);
        await sayLive(observer, asker, room, "blive");
        // biboumi writes its rows as it delivers; wait until every user's copies are in.
        const sqlite = new DatabaseSync(db);
        const rows = () =>
          Number((sqlite.prepare("SELECT COUNT(*) AS n FROM muclogline_").get() as { n: number | bigint }).n);
        for (let i = 0; i < 100 && rows() < LIVE_LINES * USERS; i++) await settle(200);
        const liveRows = rows();
        const sample = sqlite
          .prepare("SELECT owner_, ircchanname_, ircservername_, date_, nick_ FROM muclogline_ LIMIT 1")
          .get() as {
          owner_: string;
          ircchanname_: string;
          ircservername_: string;
          date_: number;
          nick_: string;
        };
        // The rest, as biboumi stores a line: one row per user.
        const fill = LINES - LIVE_LINES;
        const insert = sqlite.prepare(
          "INSERT INTO muclogline_ (uuid_, owner_, ircchanname_, ircservername_, date_, body_, nick_) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        const t1 = performance.now();
        sqlite.exec("BEGIN");
        for (let i = 0; i < fill; i++) {
          const body = `line ${i}: the quick brown fox jumps over the lazy dog, as IRC lines go`;
          for (const u of users)
            insert.run(
              randomUUID(),
              u.bare,
              sample.ircchanname_,
              sample.ircservername_,
              sample.date_ + 1 + Math.floor(i / 10),
              body,
              `nick${i % 40}`,
            );
        }
        sqlite.exec("COMMIT");
        const fillMs = performance.now() - t1;
        const total = rows();
        sqlite.close();
        const size = (await stat(db)).size;
        const queries = await measureQueries(asker, room);
        result.biboumi = {
          users: USERS,
          joinMs: Math.round(joinMs),
          liveLinesSaid: LIVE_LINES,
          liveRows,
          rowsPerLine: +(liveRows / LIVE_LINES).toFixed(1),
          dateColumn: sample.date_,
          fillRowsPerSecond: Math.round((fill * USERS) / (fillMs / 1000)),
          archivedLines: LINES,
          rows: total,
          databaseBytes: size,
          bytesPerLine: Math.round(size / LINES),
          bytesPerRow: Math.round(size / total),
          ...queries,
        };
        console.error("biboumi:", JSON.stringify(result.biboumi));
      } catch (err) {
        console.error("biboumi failed:", err);
        result.biboumi = { error: (err as Error).message };
      } finally {
        await biboumi.stop();
      }
    }
    observer.close();
    const out = {
      date: new Date().toISOString(),
      machine: machine(),
      settings: {
        users: USERS,
        lines: LINES,
        page: PAGE,
        queries: QUERIES,
        warmup: WARMUP,
        liveLines: LIVE_LINES,
      },
      ...result,
    };
    console.log(JSON.stringify(out, null, 2));
    await saveResult("irc-mam", out);
  } finally {
    redis.disconnect();
    await stop();
  }
}

runBench(main);
