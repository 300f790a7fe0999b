import { mkdir } from "node:fs/promises";
import { freePort } from "./ports.js";
import { ownServer } from "./owner.js";
import { type ServerSpec, startServer, stopServer } from "./process.js";

export const REDIS_SERVER = "/usr/bin/redis-server";

/** A running redis-server on loopback. */
export interface RedisPeer {
  host: "127.0.0.1";
  port: number;
  url: string;
  stop(): Promise<void>;
  /** Starts again on the same port with the same data dir (data survives only with appendOnly). */
  start(): Promise<void>;
  /** Plain data: pass it to attachRedis() in another process. */
  info: RedisInfo;
}

/** What another process needs to reach and restart the same redis-server. */
export interface RedisInfo {
  dir: string;
  port: number;
  appendOnly: boolean;
}

function redisSpec({ dir, port, appendOnly }: RedisInfo): ServerSpec {
  return {
    name: "redis",
    dir,
    command: REDIS_SERVER,
    // Arguments, not a config file: nothing else to keep in sync. No RDB snapshots ever.
    args: [
      ...["--bind", "127.0.0.1", "--port", String(port), "--dir", dir, "--daemonize", "no"],
      ...["--save", "", "--appendonly", appendOnly ? "yes" : "no", "--logfile", ""],
      ...["--protected-mode", "yes", "--databases", "16"],
    ],
    ports: [port],
    startTimeoutMs: 15_000,
  };
}

/** A RedisPeer for an already-started redis-server (e.g. from a Vitest worker). */
export function attachRedis(info: RedisInfo): RedisPeer {
  const spec = redisSpec(info);
  return {
    host: "127.0.0.1",
    port: info.port,
    url: `redis://127.0.0.1:${info.port}`,
    stop: () => stopServer(spec),
    start: () => startServer(spec),
    info,
  };
}

/** Starts redis-server on a free loopback port with `dir` as its data dir; owned by this process. */
export async function startRedis(opts: { dir: string; appendOnly?: boolean }): Promise<RedisPeer> {
  await mkdir(opts.dir, { recursive: true });
  const info: RedisInfo = { dir: opts.dir, port: await freePort(), appendOnly: opts.appendOnly ?? false };
  const spec = redisSpec(info);
  ownServer(spec);
  await startServer(spec);
  return attachRedis(info);
}
