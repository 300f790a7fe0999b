/**
 * The gateway as a separate process, started from a config object, for tests that must kill it the hard
 * way (SIGKILL: no stop handlers run, exactly like a crash or a power cut).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** Everything it logged so far (JSON lines). */
  log(): string;
  /** Resolves when a log line contains `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
}

export function gatewayProcess(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/main.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Writes `config` to a temporary file and runs the gateway on it at debug level. */
export async function startGatewayProcess(
  config: object,
  env: NodeJS.ProcessEnv = {},
): Promise<GatewayProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), "gw-proc-"));
  const file = path.join(dir, "gateway.json");
  await writeFile(file, JSON.stringify(config));
  const child = gatewayProcess(["--config", file], { LOG_LEVEL: "debug", ...env });
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  return {
    child,
    log: () => log,
    waitForLog: async (text, timeoutMs = 20_000) => {
      const until = Date.now() + timeoutMs;
      while (!log.includes(text)) {
        if (Date.now() > until || child.exitCode !== null)
          throw new Error(
            `the gateway did not log "${text}" (exit code ${child.exitCode}); its log:\n${log.slice(-3000)}`,
          );
        await sleep(50);
      }
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGKILL");
      await exited;
    },
  };
}
