/**
 * A Redis primary, its replicas and three sentinels on loopback (Debian's redis-server, which runs as a
 * sentinel with `--sentinel`), for the failover tests. Short timings: a primary that stops answering is
 * declared down after DOWN_AFTER_MS and a replica promoted.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { ownServer } from "./owner.js";
import { freePort } from "./ports.js";
import { killServer, readPgid, type ServerSpec, signalGroup, startServer, stopServer } from "./process.js";
import { REDIS_SERVER } from "./redis.js";

export const MASTER_NAME = "xgw-primary";
/** How long a silent primary stays "up" for the sentinels. */
export const DOWN_AFTER_MS = 1_000;
const SENTINELS = 3;

export interface SentinelGroup {
  masterName: string;
  sentinels: { host: string; port: number }[];
  /** The data servers by port (the primary first at start). */
  servers: number[];
  /** The port of the server the sentinels name as primary now. */
  primary(): Promise<number>;
  /** Stops one data server without closing anything (SIGSTOP): it answers nothing, replicates nothing. */
  pause(port: number): Promise<void>;
  /** Lets a paused server run again (SIGCONT). */
  resume(port: number): Promise<void>;
  /** SIGKILL to one data server. */
  kill(port: number): Promise<void>;
  /** Starts a killed data server again (the sentinels make it a replica of the current primary). */
  restart(port: number): Promise<void>;
  /** Waits until the sentinels name a primary other than `port`, and returns it. */
  failedOver(port: number, timeoutMs?: number): Promise<number>;
  /** How many replicas the current primary has connected and in sync. */
  replicas(): Promise<number>;
  stop(): Promise<void>;
}

function dataSpec(dir: string, port: number, replicaOf?: number): ServerSpec {
  return {
    name: `redis-${port}`,
    dir,
    command: REDIS_SERVER,
    args: [
      ...["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--daemonize", "no"],
      // Persistence on every server, as docs/deployment.md asks: a write is in the file before it is
      // answered (fsync once a second: a killed process loses nothing), so a killed server that starts again
      // comes back with its data. Without it, it comes back empty, and should the sentinels
      // promote it before it has synced (a second failover), the replica that had the data copies the empty
      // one and loses it: Redis documents this, and the bed saw it with persistence off.
      ...["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
      ...["--appenddirname", `aof-${port}`, "--logfile", "", "--protected-mode", "no"],
      ...["--dbfilename", `dump-${port}.rdb`],
      ...(replicaOf ? ["--replicaof", "127.0.0.1", String(replicaOf)] : []),
    ],
    ports: [port],
    startTimeoutMs: 15_000,
  };
}

/** Starts a primary with `replicas` replicas and three sentinels watching it, in `dir`. */
export async function startSentinelGroup(opts: { dir: string; replicas?: number }): Promise<SentinelGroup> {
  await mkdir(opts.dir, { recursive: true });
  const primaryPort = await freePort();
  const specs = new Map<number, ServerSpec>();
  const start = async (spec: ServerSpec, port: number) => {
    specs.set(port, spec);
    ownServer(spec);
    await startServer(spec);
  };
  await start(dataSpec(opts.dir, primaryPort), primaryPort);
  const servers = [primaryPort];
  for (let i = 0; i < (opts.replicas ?? 1); i++) {
    const port = await freePort();
    await start(dataSpec(opts.dir, port, primaryPort), port);
    servers.push(port);
  }
  const sentinelSpecs: ServerSpec[] = [];
  const sentinels: { host: string; port: number }[] = [];
  for (let i = 0; i < SENTINELS; i++) {
    const port = await freePort();
    const file = path.join(opts.dir, `sentinel-${port}.conf`);
    // Sentinel rewrites its own config file: one writable file each.
    await writeFile(
      file,
      [
        `port ${port}`,
        "bind 127.0.0.1",
        "protected-mode no",
        `dir ${opts.dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        "",
      ].join("\n"),
    );
    const spec: ServerSpec = {
      name: `sentinel-${port}`,
      dir: opts.dir,
      command: REDIS_SERVER,
      args: [file, "--sentinel"],
      ports: [port],
      startTimeoutMs: 15_000,
    };
    sentinelSpecs.push(spec);
    ownServer(spec);
    await startServer(spec);
    sentinels.push({ host: "127.0.0.1", port });
  }

  const ask = async <T>(fn: (s: Redis) => Promise<T>): Promise<T> => {
    let last: unknown;
    for (const { port } of sentinels) {
      const s = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
      try {
        await s.connect();
        return await fn(s);
      } catch (err) {
        last = err;
      } finally {
        s.disconnect();
      }
    }
    throw last;
  };
  const primary = () =>
    ask(async (s) => {
      const [, port] = (await s.call("SENTINEL", "get-master-addr-by-name", MASTER_NAME)) as [string, string];
      return Number(port);
    });

  const group: SentinelGroup = {
    masterName: MASTER_NAME,
    sentinels,
    servers,
    primary,
    async pause(port) {
      signalGroup(await readPgid(specs.get(port)!), "SIGSTOP");
    },
    async resume(port) {
      signalGroup(await readPgid(specs.get(port)!), "SIGCONT");
    },
    async kill(port) {
      await killServer(specs.get(port)!);
    },
    async restart(port) {
      await startServer(specs.get(port)!);
    },
    async failedOver(port, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const now = await primary().catch(() => port);
        if (now !== port) return now;
        if (Date.now() > deadline) throw new Error(`no failover from ${port} within ${timeoutMs} ms`);
        await sleep(100);
      }
    },
    async replicas() {
      const r = new Redis({ port: await primary(), host: "127.0.0.1", maxRetriesPerRequest: 0 });
      try {
        const info = await r.info("replication");
        return [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
      } finally {
        r.disconnect();
      }
    },
    async stop() {
      await Promise.all([...sentinelSpecs, ...specs.values()].map((s) => stopServer(s)));
    },
  };
  // Ready when the sentinels know the replicas (they discover them through the primary's INFO).
  for (let i = 0; ; i++) {
    const known = await ask(
      async (s) => ((await s.call("SENTINEL", "replicas", MASTER_NAME)) as unknown[]).length,
    ).catch(() => 0);
    if (known >= servers.length - 1 && (await group.replicas()) >= servers.length - 1) break;
    if (i > 300) throw new Error("the sentinels never saw the replicas");
    await sleep(100);
  }
  return group;
}
