import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, writeSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * How to run one server. Everything here is plain data, so any process that knows the peer's dir
 * (the owner, or a Vitest worker that attached) can start and stop it: the running server is
 * found through `<dir>/<name>.pgid`, not through an in-memory child handle.
 */
export interface ServerSpec {
  /** Short name: used for the log file `<dir>/<name>.log`, the pid file and error messages. */
  name: string;
  dir: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  /** Loopback TCP ports that must all accept connections before the server counts as started. */
  ports: number[];
  startTimeoutMs?: number;
  /** Grace period between SIGTERM and SIGKILL. */
  stopTimeoutMs?: number;
}

/** The server's own error: start failed or timed out, with the end of its log attached. */
export class ServerError extends Error {
  override name = "ServerError";
}

export const logFile = (spec: ServerSpec): string => path.join(spec.dir, `${spec.name}.log`);
export const pgidFile = (spec: ServerSpec): string => path.join(spec.dir, `${spec.name}.pgid`);

/** Last `lines` lines of a file ("" if it does not exist). */
export async function tail(file: string, lines = 40): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Ids of the live (non-zombie) processes in process group `pgid`, read from /proc. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && fields[0] !== "X" && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

export function signalGroup(pgid: number | undefined, signal: NodeJS.Signals): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

export async function readPgid(spec: ServerSpec): Promise<number | undefined> {
  try {
    const pgid = Number((await readFile(pgidFile(spec), "utf8")).trim());
    return Number.isInteger(pgid) && pgid > 1 ? pgid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the server (any process of its group) is running. */
export async function isRunning(spec: ServerSpec): Promise<boolean> {
  const pgid = await readPgid(spec);
  return pgid !== undefined && groupMembers(pgid).length > 0;
}

/** Inodes of the LISTEN sockets on 127.0.0.1:`port` (from /proc/net/tcp). */
function listeningInodes(port: number): Set<string> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const inodes = new Set<string>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/); // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (fields[1] === local && fields[3] === "0A" && fields[9] !== undefined) inodes.add(fields[9]);
  }
  return inodes;
}

/**
 * Whether a process of group `pgid` listens on 127.0.0.1:`port`. Stronger than a test connection
 * (another program that grabbed the port cannot fool it) and leaves no trace in the server's log.
 */
export function groupListensOn(pgid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return false;
  for (const pid of groupMembers(pgid)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
        if (inode !== undefined && inodes.has(inode)) return true;
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return false;
}

/**
 * Starts the server in its own process group (detached, so it outlives a Vitest worker that
 * restarted it), logs stdout and stderr to `<dir>/<name>.log`, records the group in
 * `<dir>/<name>.pgid` and waits until it listens on every port in `spec.ports`.
 */
export async function startServer(spec: ServerSpec): Promise<void> {
  if (await isRunning(spec)) throw new ServerError(`${spec.name} is already running (see ${pgidFile(spec)})`);
  const log = logFile(spec);
  const fd = openSync(log, "a");
  writeSync(fd, `\n--- [bed] ${new Date().toISOString()} ${spec.command} ${spec.args.join(" ")}\n`);
  let child: ChildProcess;
  try {
    child = spawn(spec.command, spec.args, {
      cwd: spec.dir,
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, ...spec.env },
      ...(spec.uid === undefined ? {} : { uid: spec.uid }),
      ...(spec.gid === undefined ? {} : { gid: spec.gid }),
    });
  } finally {
    closeSync(fd);
  }
  child.unref();
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const pgid = child.pid;
  if (pgid === undefined)
    throw new ServerError(`${spec.name}: could not spawn ${spec.command}: ${String(await spawnError)}`);
  await writeFile(pgidFile(spec), `${pgid}\n`);

  const deadline = Date.now() + (spec.startTimeoutMs ?? 30_000);
  const pending = [...spec.ports];
  while (pending.length > 0) {
    const port = pending[0];
    if (port !== undefined && groupListensOn(pgid, port)) {
      pending.shift();
      continue;
    }
    const died = groupMembers(pgid).length === 0;
    if (died || Date.now() > deadline) {
      signalGroup(pgid, "SIGKILL");
      const why = died
        ? `exited (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`
        : "timed out";
      throw new ServerError(
        `${spec.name} ${why} before listening on 127.0.0.1:${pending.join(",")}.\n` +
          `Command: ${spec.command} ${spec.args.join(" ")}\nLog ${log}:\n${await tail(log)}`,
      );
    }
    await sleep(25);
  }
}

/** Waits up to `ms` for the server's processes to exit by themselves; true if they did. */
export async function waitForExit(spec: ServerSpec, ms: number): Promise<boolean> {
  const pgid = await readPgid(spec);
  const deadline = Date.now() + ms;
  while (pgid !== undefined && groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/** SIGTERM to the server's process group, SIGKILL after the grace period; waits until all exited. */
export async function stopServer(spec: ServerSpec): Promise<void> {
  const pgid = await readPgid(spec);
  if (pgid === undefined) return;
  signalGroup(pgid, "SIGTERM");
  const killAt = Date.now() + (spec.stopTimeoutMs ?? 10_000);
  let killed = false;
  while (groupMembers(pgid).length > 0) {
    if (!killed && Date.now() > killAt) {
      signalGroup(pgid, "SIGKILL");
      killed = true;
    }
    if (killed && Date.now() > killAt + 10_000) {
      throw new ServerError(`${spec.name}: process group ${pgid} survived SIGKILL`);
    }
    await sleep(25);
  }
  await rm(pgidFile(spec), { force: true });
}

/** SIGKILL to the server's process group (a crash: no shutdown at all); waits until all exited. */
export async function killServer(spec: ServerSpec): Promise<void> {
  const pgid = await readPgid(spec);
  if (pgid === undefined) return;
  signalGroup(pgid, "SIGKILL");
  if (!(await waitForExit(spec, 10_000)))
    throw new ServerError(`${spec.name}: process group ${pgid} survived SIGKILL`);
  await rm(pgidFile(spec), { force: true });
}
