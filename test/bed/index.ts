import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type DebianPackage, ensureDebianPackages } from "./apt.js";
import { attachEjabberd, EJABBERDCTL, startEjabberd } from "./ejabberd.js";
import { attachNgircd, type IrcInfo, type IrcPeer, NGIRCD, startNgircd } from "./ngircd.js";
import { attachProsody, PROSODY, startProsody } from "./prosody.js";
import { attachRedis, REDIS_SERVER, type RedisInfo, type RedisPeer, startRedis } from "./redis.js";
import type { ComponentConfig, XmppInfo, XmppPeer } from "./xmpp.js";

export type { Account } from "./ibr.js";
export type { IrcInfo, IrcPeer } from "./ngircd.js";
export type { RedisInfo, RedisPeer } from "./redis.js";
export type { ComponentConfig, XmppInfo, XmppPeer } from "./xmpp.js";
export { freePort } from "./ports.js";

export interface BedOptions {
  /** Where the servers keep config, data and logs. Default: a fresh `mkdtemp` under os.tmpdir(). */
  dir?: string;
  /** Which servers to start; each defaults to true. */
  prosody?: boolean;
  ejabberd?: boolean;
  irc?: boolean;
  redis?: boolean;
  /** The XMPP virtual host of both XMPP servers. Default "localhost". */
  host?: string;
  /** External components (XEP-0114) both XMPP servers accept. */
  components: ComponentConfig[];
  /** Redis with an append-only file, so its data survives stop()/start(). Default false. */
  redisAppendOnly?: boolean;
  /** Prosody with Nagle's algorithm on its connections (its default). Default true. */
  prosodyNagle?: boolean;
}

/** Plain JSON data: hand it to a Vitest worker (e.g. via `provide`) and call attach() there. */
export interface BedInfo {
  dir: string;
  host: string;
  components: ComponentConfig[];
  /** Whether stop() deletes `dir` (true for a temp dir the bed made, unless GW_KEEP_BED=1). */
  removeDir: boolean;
  prosody?: XmppInfo;
  ejabberd?: XmppInfo;
  irc?: IrcInfo;
  redis?: RedisInfo;
  /** How long each server took to start, in ms; "apt" is the Debian package check (and install). */
  startMs: Record<string, number>;
}

export interface Bed {
  dir: string;
  prosody?: XmppPeer;
  ejabberd?: XmppPeer;
  irc?: IrcPeer;
  redis?: RedisPeer;
  /** Stops every server (in parallel) and removes the temp dir unless GW_KEEP_BED=1. */
  stop(): Promise<void>;
  describe(): BedInfo;
}

/** One or more servers of the bed failed to start or stop. */
export class BedError extends Error {
  override name = "BedError";
}

const PACKAGES: Record<"prosody" | "ejabberd" | "irc" | "redis", DebianPackage> = {
  prosody: { bin: PROSODY, pkg: "prosody" },
  ejabberd: { bin: EJABBERDCTL, pkg: "ejabberd" },
  irc: { bin: NGIRCD, pkg: "ngircd" },
  redis: { bin: REDIS_SERVER, pkg: "redis-server" },
};

const messages = (results: PromiseSettledResult<unknown>[]): string[] =>
  results.flatMap((r) =>
    r.status === "rejected" ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : [],
  );

/** The peer a start produced, if it was wanted and did start. */
function started<T>(result: PromiseSettledResult<T | false>): T | undefined {
  return result.status === "fulfilled" && result.value !== false ? result.value : undefined;
}

/** A Bed object for servers that another process started (and owns): stop/start/registerUsers work. */
export function attach(info: BedInfo): Bed {
  const bed: Bed = {
    dir: info.dir,
    ...(info.prosody && { prosody: attachProsody(info.prosody) }),
    ...(info.ejabberd && { ejabberd: attachEjabberd(info.ejabberd) }),
    ...(info.irc && { irc: attachNgircd(info.irc) }),
    ...(info.redis && { redis: attachRedis(info.redis) }),
    describe: () => structuredClone(info),
    stop: async () => {
      const peers = [bed.prosody, bed.ejabberd, bed.irc, bed.redis].filter((p) => p !== undefined);
      const failures = messages(await Promise.allSettled(peers.map((p) => p.stop())));
      if (failures.length > 0) throw new BedError(`Stopping the test bed failed:\n${failures.join("\n\n")}`);
      if (info.removeDir) await rm(info.dir, { recursive: true, force: true });
      else console.log(`[bed] kept ${info.dir} (configs, data and *.log of each server)`);
    },
  };
  return bed;
}

/**
 * Starts the selected servers in parallel on free loopback ports, each in `<dir>/<server>`,
 * installing any missing Debian package first (one apt-get call). The servers die with this
 * process; on a failed start the ones that did start are stopped again.
 */
export async function startBed(opts: BedOptions): Promise<Bed> {
  const want = {
    prosody: opts.prosody ?? true,
    ejabberd: opts.ejabberd ?? true,
    irc: opts.irc ?? true,
    redis: opts.redis ?? true,
  };
  const startMs: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await fn();
    startMs[name] = Date.now() - started;
    return result;
  };
  const pkgs = (Object.keys(want) as (keyof typeof want)[]).filter((k) => want[k]).map((k) => PACKAGES[k]);
  await timed("apt", () => ensureDebianPackages(pkgs));

  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), "xmpp-gateway-bed-")));
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755); // ejabberd and ngircd run as their own users and must reach their dirs
  const host = opts.host ?? "localhost";
  const { components } = opts;
  const info: BedInfo = {
    dir,
    host,
    components,
    removeDir: !opts.dir && process.env.GW_KEEP_BED !== "1",
    startMs,
  };
  const sub = (name: string): string => path.join(dir, name);

  const results = await Promise.allSettled([
    want.prosody &&
      timed("prosody", () =>
        startProsody({ dir: sub("prosody"), host, components, nagle: opts.prosodyNagle }),
      ),
    want.ejabberd && timed("ejabberd", () => startEjabberd({ dir: sub("ejabberd"), host, components })),
    want.irc && timed("irc", () => startNgircd({ dir: sub("ngircd") })),
    want.redis &&
      timed("redis", () => startRedis({ dir: sub("redis"), appendOnly: opts.redisAppendOnly ?? false })),
  ]);
  info.prosody = started(results[0])?.info;
  info.ejabberd = started(results[1])?.info;
  info.irc = started(results[2])?.info;
  info.redis = started(results[3])?.info;
  const bed = attach(info);

  const failures = messages(results);
  if (failures.length > 0) {
    await bed.stop().catch(() => undefined);
    throw new BedError(`The test bed did not start (dir ${dir}):\n\n${failures.join("\n\n")}`);
  }
  console.log(
    `[bed] ${dir}: ${Object.entries(startMs)
      .map(([name, ms]) => `${name} ${ms} ms`)
      .join(", ")}`,
  );
  return bed;
}
