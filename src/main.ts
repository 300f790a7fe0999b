#!/usr/bin/env node
/**
 * Command line: `xmpp-gateway [--config PATH] [--check-config]`.
 * Exit codes: 0 stopped cleanly, 1 failed at run time, 2 unusable configuration or arguments.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "./config/load.js";
import { createGateway, loadGatewayConfig } from "./compose.js";
import { createLogger } from "./log.js";

/** Longest a graceful stop may take before the process exits anyway. */
const STOP_TIMEOUT_MS = 15_000;

const USAGE = `Usage: xmpp-gateway [--config PATH] [--check-config]

  --config PATH    configuration file (default: gateway.config.json)
  --check-config   validate the configuration and the secrets in the environment, then exit
  --help           show this text
`;

function fail(lines: string[], code: number): never {
  process.stderr.write(lines.join("\n") + "\n");
  process.exit(code);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: "string", default: "gateway.config.json" },
        "check-config": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail([(err as Error).message, "", USAGE], 2);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }

  let loaded;
  try {
    loaded = await loadGatewayConfig(args.config);
  } catch (err) {
    if (err instanceof ConfigError)
      fail([`${err.file}: the configuration is not valid:`, ...err.problems.map((p) => `  - ${p}`)], 2);
    throw err;
  }
  if (args["check-config"]) {
    const enabled = Object.entries(loaded.config.adapters)
      .filter(([, a]) => a?.enabled)
      .map(([key, a]) => `${key} (${a?.domain})`);
    process.stdout.write(`${args.config}: configuration is valid; adapters: ${enabled.join(", ")}\n`);
    return;
  }

  // LOG_LEVEL in the environment overrides log.level for one run (e.g. debug while investigating).
  const log = createLogger({ level: process.env.LOG_LEVEL ?? loaded.config.log.level });
  const gateway = createGateway(loaded, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => {
      log.error("graceful stop timed out; exiting");
      process.exit(1);
    }, STOP_TIMEOUT_MS);
    timer.unref();
    gateway
      .stop()
      .then(() => {
        log.info("stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, "error while stopping");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  log.info({ adapters: [...gateway.services.keys()] }, "starting");
  await gateway.start();
  log.info("started");
}

main().catch((err: unknown) => {
  process.stderr.write(`xmpp-gateway: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
