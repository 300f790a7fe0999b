/**
 * A real Prometheus Alertmanager (Debian package prometheus-alertmanager) on a free loopback port, with one
 * webhook receiver pointing at the gateway; alerts are pushed with its v2 HTTP API. Its config and data live in
 * a temporary directory of its own, removed when it stops.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ensureDebianPackages } from "../bed/apt.js";
import { freePort } from "../bed/ports.js";

/** Debian's Alertmanager binary (the test installs the package when it is missing). */
const ALERTMANAGER = "/usr/bin/prometheus-alertmanager";

export interface TestAlertmanager {
  url: string;
  /** Pushes alerts (firing, or resolved when endsAt is in the past) through POST /api/v2/alerts. */
  push(alerts: Record<string, unknown>[]): Promise<void>;
  /** Stops Alertmanager and removes its directory. */
  stop(): Promise<void>;
  readonly output: string[];
}

/** The receiver block the docs show, with the gateway's URL and token filled in. */
export function receiverYaml(opts: { name: string; url: string; token: string }): string {
  return [
    "receivers:",
    `  - name: ${opts.name}`,
    "    webhook_configs:",
    `      - url: "${opts.url}"`,
    "        send_resolved: true",
    "        http_config:",
    "          authorization:",
    "            type: Bearer",
    `            credentials: "${opts.token}"`,
  ].join("\n");
}

export async function startAlertmanager(opts: {
  receiver: string;
  webhookUrl: string;
  token: string;
}): Promise<TestAlertmanager> {
  await ensureDebianPackages([{ bin: ALERTMANAGER, pkg: "prometheus-alertmanager" }]);
  const dir = await mkdtemp(path.join(tmpdir(), "alertmanager-"));
  const port = await freePort();
  const config = [
    "route:",
    `  receiver: ${opts.receiver}`,
    "  group_by: [alertname]",
    "  group_wait: 1s",
    "  group_interval: 1s",
    "  repeat_interval: 1h",
    receiverYaml({ name: opts.receiver, url: opts.webhookUrl, token: opts.token }),
  ].join("\n");
  await writeFile(path.join(dir, "alertmanager.yml"), config + "\n");
  const child: ChildProcess = spawn(
    ALERTMANAGER,
    [
      `--config.file=${path.join(dir, "alertmanager.yml")}`,
      `--storage.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=",
      "--log.level=debug",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  child.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
    await rm(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  for (const end = Date.now() + 20_000; ;) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > end || child.exitCode !== null) {
      await stop();
      throw new Error(`Alertmanager did not start:\n${output.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    output,
    async push(alerts) {
      const res = await fetch(`${url}/api/v2/alerts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(alerts),
      });
      if (!res.ok) throw new Error(`Alertmanager refused the alerts: ${res.status} ${await res.text()}`);
    },
    stop,
  };
}
