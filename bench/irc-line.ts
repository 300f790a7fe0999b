/**
 * The IRC line layer alone, no XMPP: N connections of the IRC adapter's connection table to a scripted IRC
 * server on loopback (CAP with server-time/message-tags/echo-message, registration, one channel joined),
 * then one connection fed a burst of tagged channel lines. Measures heap and RSS per connection after GC,
 * and CPU per server line from the socket to the user's events. Compares this tree with another checkout
 * of the gateway (BENCH_LINE_OTHER=/path, e.g. the release before the line layer was replaced), each run in
 * a process of its own (the other checkout needs its own node_modules, e.g. `npm ci` there).
 * Run: `node --expose-gc --import tsx bench/irc-line.ts` (writes bench/results/irc-line.json).
 */
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { pino } from "pino";
import { machine, saveResult } from "./lib.js";

const CONNECTIONS = Number(process.env.BENCH_LINE_CONNECTIONS ?? 1000);
const LINES = Number(process.env.BENCH_LINE_LINES ?? 50_000);
const SERVER = "irc.bench.example";

interface Measure {
  tree: string;
  connections: number;
  heapKiBPerConnection: number;
  rssKiBPerConnection: number;
  lines: number;
  cpuMicrosPerLine: number;
}

/** Answers registration and JOIN like ngircd would, for every connection. */
async function scriptedServer(): Promise<{ port: number; sockets: Socket[]; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on("error", () => undefined);
    let rest = "";
    let nick = "";
    let capEnded = false;
    let welcomed = false;
    s.on("data", (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split("\r\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        const [command = "", arg = ""] = line.split(" ");
        if (line.startsWith("CAP LS"))
          s.write(`:${SERVER} CAP * LS :server-time message-tags echo-message\r\n`);
        else if (command === "CAP" && arg === "REQ")
          s.write(`:${SERVER} CAP * ACK :${line.slice(8).replace(/^:/, "")}\r\n`);
        else if (line === "CAP END") capEnded = true;
        else if (command === "NICK") nick = arg;
        else if (command === "JOIN")
          s.write(
            `:${nick}!u@h JOIN ${arg}\r\n:${SERVER} 353 ${nick} = ${arg} :${nick} @op\r\n:${SERVER} 366 ${nick} ${arg} :End\r\n`,
          );
        if (nick && capEnded && !welcomed) {
          welcomed = true;
          s.write(
            `:${SERVER} 001 ${nick} :Welcome ${nick}!u@h\r\n:${SERVER} 005 ${nick} PREFIX=(ov)@+ :ok\r\n`,
          );
        }
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as { port: number }).port, sockets, close: () => server.close() };
}

const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

/** One tree's numbers (runs in a child process: `--measure TREE`). */
async function measure(tree: string): Promise<Measure> {
  const irc = await scriptedServer();
  const mod = (await import(pathToFileURL(path.join(tree, "adapters/irc/connections.ts")).href)) as {
    IrcConnections: new (opts: unknown) => {
      open(user: string, server: string, nick: string): IrcSessionLike;
      closeAll(m: string): void;
    };
  };
  const { ircConfigSchema } = (await import(
    pathToFileURL(path.join(tree, "adapters/irc/config.ts")).href
  )) as {
    ircConfigSchema: { parse(v: unknown): unknown };
  };
  // The release before: events came from inbound.ts attached to each session.
  const inbound = (await import(pathToFileURL(path.join(tree, "adapters/irc/inbound.ts")).href).catch(
    () => undefined,
  )) as { attachInbound?: (s: unknown, sink: unknown) => void } | undefined;
  const config = ircConfigSchema.parse({
    servers: { allow: [SERVER] },
    addresses: { [SERVER]: { host: "127.0.0.1", port: irc.port, tls: false } },
    lineDelayMs: 0,
    maxConnectionsPerServer: CONNECTIONS + 1,
  });
  const log = pino({ level: "silent" });
  let events = 0;
  const deliver = (_s: unknown, evs: unknown[]) => (events += evs.length);
  const sink = {
    log,
    emit: deliver,
    persist: () => undefined,
    claimChannelCtcp: () => Promise.resolve(true),
    nickJid: () => "x@y",
  };
  const connections = new mod.IrcConnections({
    config,
    log: () => log,
    deliver,
    attach: (s: unknown) => inbound?.attachInbound?.(s, { ...sink, connections }),
  });
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const sessions: IrcSessionLike[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const session = connections.open(`u${i}@bench.example`, SERVER, `u${i}`);
    addMember(session, "#bench", `u${i}@bench.example/r`);
    sessions.push(session);
  }
  for (const session of sessions) {
    await session.ready;
    if (session.requestJoin?.("#bench") ?? true) await session.send("JOIN", "#bench");
  }
  await waitFor(() => sessions.every((s) => (s.isSynced ? s.isSynced("#bench") : s.synced?.has("#bench"))));
  gc();
  await new Promise((resolve) => setTimeout(resolve, 200));
  gc();
  const heap1 = process.memoryUsage().heapUsed;
  const rss1 = process.memoryUsage().rss;
  // CPU per line: a burst of tagged channel lines to the first connection, until every one became an event.
  const socket = irc.sockets[0];
  if (!socket) throw new Error("no connection");
  events = 0;
  const line = (i: number) =>
    `@time=2026-01-01T00:00:00.000Z;msgid=m${i} :op!u@h PRIVMSG #bench :line ${i} of the burst, a usual length\r\n`;
  const start = process.cpuUsage();
  for (let i = 0; i < LINES; i += 1000)
    socket.write(Array.from({ length: Math.min(1000, LINES - i) }, (_, j) => line(i + j)).join(""));
  await waitFor(() => events >= LINES);
  const cpu = process.cpuUsage(start);
  connections.closeAll("bench over");
  irc.close();
  return {
    tree,
    connections: CONNECTIONS,
    heapKiBPerConnection: +((heap1 - heap0) / 1024 / CONNECTIONS).toFixed(1),
    rssKiBPerConnection: +((rss1 - rss0) / 1024 / CONNECTIONS).toFixed(1),
    lines: LINES,
    cpuMicrosPerLine: +((cpu.user + cpu.system) / LINES).toFixed(2),
  };
}

interface IrcSessionLike {
  ready: Promise<void>;
  send(command: string, ...args: string[]): Promise<void>;
  addMember?(channel: string, jid: string, m: unknown): void;
  requestJoin?(channel: string): boolean;
  isSynced?(channel: string): boolean;
  synced?: Set<string>;
  requested?: Set<string>;
  channels: Map<string, Map<string, unknown>>;
}

function addMember(session: IrcSessionLike, channel: string, jid: string): void {
  const member = { roomJid: `${channel}%${SERVER}@irc.bench`, requestedNick: "x" };
  if (session.addMember) return session.addMember(channel, jid, member);
  // The release before: public maps.
  session.channels.set(channel, new Map([[jid, member]]));
  session.requested?.add(channel);
}

async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 20));
}

const here = fileURLToPath(new URL("..", import.meta.url));
if (process.argv[2] === "--measure") {
  const result = await measure(process.argv[3] ?? here);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  const trees = [here, ...(process.env.BENCH_LINE_OTHER ? [process.env.BENCH_LINE_OTHER] : [])];
  const results: Measure[] = [];
  for (const tree of trees) {
    const label = tree === here ? "this tree (own line layer)" : (process.env.BENCH_LINE_OTHER_LABEL ?? tree);
    const run = spawnSync(
      process.execPath,
      ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), "--measure", tree],
      { encoding: "utf8", cwd: here, maxBuffer: 1 << 24 },
    );
    if (run.status !== 0) throw new Error(`measuring ${tree} failed: ${run.stderr}`);
    results.push({ ...(JSON.parse(run.stdout.trim().split("\n").pop() ?? "{}") as Measure), tree: label });
  }
  console.table(results);
  await saveResult("irc-line", { machine: machine(), results });
}
