/**
 * A Redis Cluster of masters on loopback (Debian's redis-server with `--cluster-enabled yes`, no replicas),
 * created with `redis-cli --cluster create`, for the cluster tests. Each node has its own data dir, a client
 * port and a cluster-bus port chosen free at run time, and runs in its own process group.
 */
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { ensureDebianPackages } from "./apt.js";
import { ownServer } from "./owner.js";
import { freePorts } from "./ports.js";
import { type ServerSpec, startServer, stopServer } from "./process.js";
import { REDIS_SERVER } from "./redis.js";

export const REDIS_CLI = "/usr/bin/redis-cli";
/** How long the cluster may take to agree on its slot map after create or a reshard. */
const SETTLE_MS = 30_000;

export interface RedisCluster {
  /** The nodes as the gateway's `redis.cluster` takes them ("127.0.0.1:PORT"). */
  seeds: string[];
  /** The masters' client ports. */
  ports: number[];
  /** The port of the master that serves `key`'s hash slot now. */
  ownerOf(key: string): Promise<number>;
  /**
   * Moves `key`'s hash slot (and the slots before it on the same master) to the master on port `to`, with
   * `redis-cli --cluster reshard`; resolves once every node agrees. Returns how many slots moved.
   */
  reshard(key: string, to: number): Promise<number>;
  stop(): Promise<void>;
}

interface Node {
  port: number;
  spec: ServerSpec;
}

function nodeSpec(dir: string, port: number, busPort: number): ServerSpec {
  return {
    name: `cluster-${port}`,
    dir,
    command: REDIS_SERVER,
    args: [
      ...["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--daemonize", "no"],
      ...["--save", "", "--appendonly", "no", "--logfile", "", "--protected-mode", "no"],
      ...["--cluster-enabled", "yes", "--cluster-port", String(busPort)],
      ...["--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "2000"],
      ...["--dbfilename", `dump-${port}.rdb`],
    ],
    ports: [port, busPort],
    startTimeoutMs: 15_000,
  };
}

async function cli(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(REDIS_CLI, args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Runs `fn` with a plain connection to one node. */
async function onNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** [first slot, last slot, port of the master] for every slot range, as `port` sees the cluster. */
async function slotMap(port: number): Promise<[number, number, number][]> {
  const slots = await onNode(port, (r) => r.cluster("SLOTS"));
  return slots.map(([from, to, master]) => [from, to, master?.[1] ?? 0]);
}

/** Waits until every node reports `cluster_state:ok` and all of them see the same slot map. */
async function settled(ports: number[]): Promise<void> {
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const states = await Promise.all(ports.map((p) => onNode(p, (r) => r.cluster("INFO")).catch(() => "")));
    const maps = await Promise.all(
      ports.map((p) =>
        slotMap(p)
          .then((m) => JSON.stringify(m.sort((a, b) => a[0] - b[0])))
          .catch(() => ""),
      ),
    );
    if (states.every((s) => s.includes("cluster_state:ok")) && maps.every((m) => m && m === maps[0])) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not settle within ${SETTLE_MS} ms`);
    await sleep(100);
  }
}

/** Starts `masters` cluster nodes in `dir` and creates the cluster over them (no replicas). */
export async function startRedisCluster(opts: { dir: string; masters?: number }): Promise<RedisCluster> {
  await ensureDebianPackages([
    { bin: REDIS_SERVER, pkg: "redis-server" },
    { bin: REDIS_CLI, pkg: "redis-tools" },
  ]);
  await mkdir(opts.dir, { recursive: true });
  const count = opts.masters ?? 3;
  const free = await freePorts(count * 2);
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const port = free[2 * i]!;
    const spec = nodeSpec(opts.dir, port, free[2 * i + 1]!);
    ownServer(spec);
    await startServer(spec);
    nodes.push({ port, spec });
  }
  const ports = nodes.map((n) => n.port);
  const seeds = ports.map((p) => `127.0.0.1:${p}`);
  await cli("--cluster", "create", ...seeds, "--cluster-replicas", "0", "--cluster-yes");
  await settled(ports);

  const ownerOf = async (key: string): Promise<number> => {
    const slot = await onNode(ports[0]!, (r) => r.cluster("KEYSLOT", key));
    const range = (await slotMap(ports[0]!)).find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`no master serves slot ${slot}`);
    return range[2];
  };
  const idOf = (port: number) => onNode(port, (r) => r.cluster("MYID"));

  return {
    seeds,
    ports,
    ownerOf,
    async reshard(key, to) {
      const slot = await onNode(ports[0]!, (r) => r.cluster("KEYSLOT", key));
      const from = await ownerOf(key);
      if (from === to) return 0;
      // redis-cli takes a source's slots from its lowest: moving as many as lie up to `slot` moves it.
      const own = (await slotMap(from)).filter(([, , master]) => master === from);
      const count = own.reduce((n, [a, b]) => n + Math.max(0, Math.min(b, slot) - a + 1), 0);
      await cli(
        ...["--cluster", "reshard", `127.0.0.1:${from}`],
        ...["--cluster-from", await idOf(from), "--cluster-to", await idOf(to)],
        ...["--cluster-slots", String(count), "--cluster-yes"],
      );
      await settled(ports);
      return count;
    },
    async stop() {
      await Promise.all(nodes.map((n) => stopServer(n.spec)));
    },
  };
}
