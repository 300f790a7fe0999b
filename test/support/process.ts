/**
 * The gateway as a real operating-system process (`node dist/src/main.js --config FILE`, compiled), for
 * tests and benchmarks that kill it the way a crash or the OOM killer would (SIGKILL: no stop(), no
 * goodbye on the component stream, only the kernel closing its sockets).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { XmppPeer } from "../bed/index.js";
import { freePort } from "../bed/ports.js";
import { TEST_SECRET } from "../slots.js";
import { requireDist } from "./dist.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  /** The public HTTP port (webhooks, media, files). */
  httpPort: number;
  /** The private HTTP port (/metrics, /readyz, /admin). */
  privatePort: number;
  /** Every JSON log line so far, parsed. */
  readonly lines: Record<string, unknown>[];
  /** The first log line (already written or coming) whose `msg` contains `text` and that matches `where`. */
  waitLog(
    text: string,
    opts?: { timeoutMs?: number; where?: (line: Record<string, unknown>) => boolean },
  ): Promise<Record<string, unknown>>;
  /** The value of one Prometheus sample from /metrics, e.g. `xgw_messages_total{adapter="echo",...}`. */
  metric(name: string, labels: Record<string, string>): Promise<number>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * `node dist/src/main.js ARGS` with its output piped, for command-line tests; or `command ARGS` (e.g. an
 * installed `xmpp-gateway`).
 */
export function gatewayProcess(args: string[], env: NodeJS.ProcessEnv = {}, command?: string): ChildProcess {
  const [file, argv] = command ? [command, args] : [process.execPath, [requireDist(), ...args]];
  return spawn(file, argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs gatewayProcess() to its end (a CLI call, or a start that must fail): its exit code and output. */
export async function runGatewayCommand(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  command?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = gatewayProcess(args, env, command);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, "exit")) as [number];
  return { code, stdout, stderr };
}

/**
 * Writes `config` (a gateway.config.json object; http.port is set to `httpPort`, or a free port, and
 * http.private.port to `privatePort`, or a free port) to
 * `<dir>/<name>.json` and starts the gateway on it; its log (pino JSON, level info) goes to
 * `<dir>/<name>.log` too. Pass the same `httpPort` to a restart to keep the webhook URL, as in production.
 */
export async function spawnGateway(opts: {
  dir: string;
  name: string;
  config: Record<string, unknown> & { http?: Record<string, unknown> };
  env: Record<string, string>;
  httpPort?: number;
  privatePort?: number;
  /** The executable to run instead of `node dist/src/main.js` (an installed `xmpp-gateway`). */
  command?: string;
}): Promise<GatewayProcess> {
  const httpPort = opts.httpPort ?? (await freePort());
  const privatePort = opts.privatePort ?? (await freePort());
  const file = path.join(opts.dir, `${opts.name}.json`);
  const http = { ...opts.config.http, port: httpPort, private: { host: "127.0.0.1", port: privatePort } };
  await writeFile(file, JSON.stringify({ ...opts.config, http }));
  const child = gatewayProcess(["--config", file], { LOG_LEVEL: "info", ...opts.env }, opts.command);
  const lines: Record<string, unknown>[] = [];
  let raw = "";
  let waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  const logStream = createWriteStream(path.join(opts.dir, `${opts.name}.log`));
  child.stdout?.on("data", (chunk: Buffer) => {
    logStream.write(chunk);
    raw += chunk.toString();
    const parts = raw.split("\n");
    raw = parts.pop() ?? "";
    for (const part of parts) {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(part) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(line);
      waiters = waiters.filter((w) => !(w.match(line) && (w.resolve(line), true)));
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => logStream.write(chunk));
  child.once("exit", () => logStream.end());
  if (child.pid === undefined) throw new Error(`could not start the gateway (${file})`);
  const exited = once(child, "exit");

  return {
    child,
    pid: child.pid,
    httpPort,
    privatePort,
    lines,
    waitLog(text, { timeoutMs = 20_000, where = () => true } = {}) {
      const match = (l: Record<string, unknown>) =>
        typeof l.msg === "string" && l.msg.includes(text) && where(l);
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `${opts.name}: no log line "${text}" within ${timeoutMs} ms; last lines:\n` +
                  lines
                    .slice(-10)
                    .map((l) => JSON.stringify(l))
                    .join("\n"),
              ),
            ),
          timeoutMs,
        );
        waiters.push({
          match,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
      });
    },
    async metric(name, labels) {
      const text = await (await fetch(`http://127.0.0.1:${privatePort}/metrics`)).text();
      const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      for (const line of text.split("\n")) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        if (wanted.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(" ") + 1));
      }
      return 0;
    },
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/**
 * One instance of an echo + SMS gateway (the two adapters the multi-instance tests use) as a process, with
 * `instanceId` = `name`; instances of one test differ only in their name and the XMPP settings passed.
 */
export function spawnEchoSmsInstance(opts: {
  dir: string;
  name: string;
  peer: XmppPeer;
  redisUrl: string;
  keyPrefix: string;
  domains: { echo: string; sms: string };
  twilio: { accountSid: string; authToken: string; apiBaseUrl: string };
  dedicated: Record<string, string>;
  xmpp?: Record<string, unknown>;
}): Promise<GatewayProcess> {
  return spawnGateway({
    dir: opts.dir,
    name: opts.name,
    env: { GW_SECRET: TEST_SECRET, TWILIO_TOKEN: opts.twilio.authToken },
    config: {
      xmpp: {
        service: `xmpp://127.0.0.1:${opts.peer.componentPort}`,
        serverDomains: [opts.peer.host],
        reconnectMaxSeconds: 2,
        ...opts.xmpp,
      },
      redis: { url: opts.redisUrl, keyPrefix: opts.keyPrefix },
      instanceId: opts.name,
      adapters: {
        echo: { domain: opts.domains.echo, secretEnv: "GW_SECRET", requireRegistration: false },
        sms: {
          domain: opts.domains.sms,
          secretEnv: "GW_SECRET",
          twilio: {
            accountSid: opts.twilio.accountSid,
            authTokenEnv: "TWILIO_TOKEN",
            apiBaseUrl: opts.twilio.apiBaseUrl,
          },
          numbers: { dedicated: opts.dedicated },
        },
      },
    },
  });
}
