#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * Command line:
 *   xmpp-gateway [run] [--config PATH]          run the gateway
 *   xmpp-gateway check-config [--config PATH]   validate the config and the secrets (also --check-config)
 *   xmpp-gateway status [--url URL]             ask a running gateway's /readyz
 *   xmpp-gateway commands                       list the admin commands (admin token needed)
 *   xmpp-gateway command ADAPTER NODE [field=value …]   run one
 *   xmpp-gateway notify --to JID|GROUP … --title T [--text T]   send an alert through the alert API
 * Exit codes: 0 stopped cleanly / ready / done, 1 failed at run time / not ready / refused (also: another
 * running gateway holds this instanceId — a supervisor may retry, it starts once that one is gone), 2 unusable
 * configuration or arguments, 143 a second SIGTERM or SIGINT cut the graceful stop short. *
 * The #! line caps V8's young generation at 2 MiB a semi-space (Node's default lets it grow to 16): measured
 * in bench/RESULTS.md, about 30 MiB less resident memory when idle and 43 MiB less at the peak of a 100,000-stanza
 * IRC burst, for a few more minor collections. `node dist/src/main.js` does not read the #! line.
 */
import { parseArgs } from "node:util";
// Only what every command needs is imported here: status and command load no adapter, no Redis client and no
// XMPP library (they start fast); check-config and run import the rest when they start.
import { describeResult, parseAssignments, request, targetFromConfig, type Target } from "./admin-client.js";
import {
  DEFAULT_NOTIFY_TOKEN_ENV,
  DEFAULT_WAIT_ACK_SECONDS,
  notify,
  publicUrlFromConfig,
} from "./notify-client.js";

/**
 * How much longer than the drain of the sends in flight (SHUTDOWN_DRAIN_MS) a graceful stop may take before
 * the process exits anyway (1): the deliverers' last batch, the goodbyes and the closing of the streams.
 */
const STOP_AFTER_DRAIN_MS = 10_000;
/** Exit code of a stop cut short by a second SIGTERM or SIGINT (128 + SIGTERM, as a shell reports it). */
const EXIT_INTERRUPTED = 143;

const USAGE = `Usage: xmpp-gateway [COMMAND] [--config PATH] [--url URL]

Commands:
  run                       run the gateway (the default)
  check-config              validate the configuration and the secrets in the environment, then exit
  status                    ask the running gateway whether it is ready (/readyz); exit 0 when it is
  commands                  list the admin commands of the running gateway
  command ADAPTER NODE [FIELD=VALUE …]
                            run an admin command, e.g.
                            xmpp-gateway command sms sms-assign number=+12025550100 jid=alice@example.org
  notify --to JID|GROUP [--to …] --title TITLE [--text TEXT]
                            send an alert through the alert API and print its id; the text is read
                            from stdin when --text is not given
                            (--severity info|warning|critical, default warning; --policy NAME;
                            --dedup-key KEY; --wait-ack [--wait-timeout SECONDS]: wait until a recipient
                            acknowledges, default ${DEFAULT_WAIT_ACK_SECONDS} s; --token-env NAME: the variable
                            holding the API token, default ${DEFAULT_NOTIFY_TOKEN_ENV})

Options:
  --config PATH    configuration file (default: gateway.config.json)
  --check-config   same as the check-config command
  --url URL        the gateway's private HTTP address (default: http.private.host and .port from the config);
                   for notify, its public address (default: http.publicUrl, or http.host and .port)
  --help           show this text

commands and command send the admin token from the environment variable named by http.admin.tokenEnv.
`;

function fail(lines: string[], code: number): never {
  process.stderr.write(lines.join("\n") + "\n");
  process.exit(code);
}

async function status(target: Target): Promise<number> {
  let answer;
  try {
    answer = await request(target, "/readyz");
  } catch (err) {
    process.stderr.write(`${target.url}: no answer (${(err as Error).message})\n`);
    return 1;
  }
  const body = answer.body as { ready?: boolean; checks?: Record<string, string> };
  process.stdout.write(`${body.ready ? "ready" : "NOT READY"}\n`);
  for (const [name, state] of Object.entries(body.checks ?? {}))
    process.stdout.write(`  ${name}: ${state}\n`);
  return answer.status === 200 && body.ready ? 0 : 1;
}

function adminToken(target: Target): string {
  if (!target.tokenEnv) fail(["The config has no http.admin.tokenEnv: the admin API is off."], 2);
  const token = process.env[target.tokenEnv];
  if (!token) fail([`Set ${target.tokenEnv} to the admin token.`], 2);
  return token;
}

async function adminCall(target: Target, args: string[]): Promise<number> {
  const token = adminToken(target);
  let answer;
  try {
    if (args.length === 0) answer = await request(target, "/admin/api/commands", { token });
    else {
      const [adapter = "", node = "", ...rest] = args;
      if (!node) fail(["Usage: xmpp-gateway command ADAPTER NODE [FIELD=VALUE …]"], 2);
      let values;
      try {
        values = parseAssignments(rest);
      } catch (err) {
        fail([(err as Error).message], 2);
      }
      answer = await request(
        target,
        `/admin/api/commands/${encodeURIComponent(adapter)}/${encodeURIComponent(node)}`,
        { token, json: { values } },
      );
    }
  } catch (err) {
    process.stderr.write(`${target.url}: no answer (${(err as Error).message})\n`);
    return 1;
  }
  if (answer.status === 401) fail(["The gateway refused the admin token."], 2);
  if (args.length === 0 && answer.status === 200) {
    for (const c of answer.body as {
      adapter: string;
      node: string;
      name: string;
      fields: { var: string; required: boolean }[];
    }[])
      process.stdout.write(
        `${c.adapter} ${c.node}  ${c.name}${c.fields.length ? `  [${c.fields.map((f) => (f.required ? f.var : `${f.var}?`)).join(" ")}]` : ""}\n`,
      );
    return 0;
  }
  (answer.status === 200 ? process.stdout : process.stderr).write(`${describeResult(answer.body)}\n`);
  return answer.status === 200 ? 0 : 1;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: "string", default: "gateway.config.json" },
        "check-config": { type: "boolean", default: false },
        url: { type: "string" },
        help: { type: "boolean", default: false },
        // notify
        to: { type: "string", multiple: true },
        title: { type: "string" },
        text: { type: "string" },
        severity: { type: "string", default: "warning" },
        policy: { type: "string" },
        "dedup-key": { type: "string" },
        "token-env": { type: "string", default: DEFAULT_NOTIFY_TOKEN_ENV },
        "wait-ack": { type: "boolean", default: false },
        "wait-timeout": { type: "string" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    fail([(err as Error).message, "", USAGE], 2);
  }
  const [command = "run", ...rest] = args.positionals;
  const options = args.values;
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (command === "status" || command === "commands" || command === "command") {
    let target;
    try {
      target = await targetFromConfig(options.config, options.url);
    } catch (err) {
      fail([(err as Error).message], 2);
    }
    process.exitCode = command === "status" ? await status(target) : await adminCall(target, rest);
    return;
  }
  if (command === "notify") {
    if (rest.length) fail([`Unexpected arguments: ${rest.join(" ")}`, "", USAGE], 2);
    if (!options.to?.length || !options.title) fail(["notify needs --to and --title.", "", USAGE], 2);
    const waitSeconds = Number(options["wait-timeout"] ?? DEFAULT_WAIT_ACK_SECONDS);
    if (!Number.isFinite(waitSeconds) || waitSeconds <= 0)
      fail([`--wait-timeout "${options["wait-timeout"]}" is not a number of seconds.`], 2);
    let base;
    try {
      base = await publicUrlFromConfig(options.config, options.url);
    } catch (err) {
      fail([(err as Error).message], 2);
    }
    process.exitCode = await notify(
      base,
      {
        to: options.to,
        title: options.title,
        text: options.text,
        severity: options.severity,
        policy: options.policy,
        dedupKey: options["dedup-key"],
        tokenEnv: options["token-env"],
        waitAck: options["wait-ack"],
        waitSeconds,
      },
      (line) => process.stdout.write(`${line}\n`),
      (line) => process.stderr.write(`${line}\n`),
    );
    return;
  }
  if (command !== "run" && command !== "check-config") fail([`Unknown command "${command}".`, "", USAGE], 2);
  if (rest.length) fail([`Unexpected arguments: ${rest.join(" ")}`, "", USAGE], 2);

  const { ConfigError } = await import("./config/load.js");
  const { loadGatewayConfig } = await import("./compose.js");
  let loaded;
  try {
    loaded = await loadGatewayConfig(options.config);
  } catch (err) {
    if (err instanceof ConfigError)
      fail([`${err.file}: the configuration is not valid:`, ...err.problems.map((p) => `  - ${p}`)], 2);
    throw err;
  }
  if (options["check-config"] || command === "check-config") {
    const enabled = Object.entries(loaded.config.adapters)
      .filter(([, a]) => a?.enabled)
      .map(([key, a]) => `${key} (${a?.domain})`);
    process.stdout.write(`${options.config}: configuration is valid; adapters: ${enabled.join(", ")}\n`);
    return;
  }

  const [
    { createGateway },
    { createLogger },
    { RecentErrors },
    { SHUTDOWN_DRAIN_MS },
    { InstanceIdInUseError },
  ] = await Promise.all([
    import("./compose.js"),
    import("./log.js"),
    import("./http/recent-errors.js"),
    import("./core/service.js"),
    import("./store/instance-lease.js"),
  ]);
  // LOG_LEVEL in the environment overrides log.level for one run (e.g. debug while investigating).
  const recentErrors = new RecentErrors();
  const log = createLogger({
    level: process.env.LOG_LEVEL ?? loaded.config.log.level,
    warnings: (level, fields, message) => recentErrors.record(level, fields, message),
  });
  const gateway = await createGateway(loaded, log, { recentErrors });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // The operator does not want to wait: what is not confirmed stays in Redis for the next start.
      log.warn({ signal }, "second signal while stopping; exiting now");
      process.exit(EXIT_INTERRUPTED);
    }
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => {
      log.error("graceful stop timed out; exiting");
      process.exit(1);
    }, SHUTDOWN_DRAIN_MS + STOP_AFTER_DRAIN_MS);
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
  // Benchmark hook, inert in production: started with --expose-gc (e.g. NODE_OPTIONS), SIGUSR2 forces a full
  // garbage collection and logs the memory left, so the footprint benchmarks read the live heap, not garbage.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc)
    process.on("SIGUSR2", () => {
      gc();
      log.warn({ memory: process.memoryUsage() }, "memory after a forced garbage collection");
    });
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  log.info({ adapters: [...gateway.services.keys()] }, "starting");
  try {
    await gateway.start();
  } catch (err) {
    if (!(err instanceof InstanceIdInUseError)) throw err;
    log.fatal({ instanceId: err.instanceId, holder: err.holder }, err.message);
    fail([`xmpp-gateway: ${err.message}`], 1);
  }
  log.info("started");
}

main().catch((err: unknown) => {
  process.stderr.write(`xmpp-gateway: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
