/**
 * A real DNS server on loopback for mail authentication (SPF, DKIM and DMARC records): Debian's dnsmasq
 * answering only the TXT records given, NXDOMAIN for every other name (no upstream, no /etc/hosts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { ensureDebianPackages } from "../bed/apt.js";
import { freePort } from "../bed/index.js";

export const DNSMASQ = "/usr/sbin/dnsmasq";

export interface TestDns {
  /** "127.0.0.1:<port>", for the gateway's auth.dnsServers. */
  server: string;
  stop(): Promise<void>;
}

/** Starts dnsmasq serving `txt` (name → one or more strings of one record; several records per name). */
export async function startDns(txt: Record<string, string | string[]>): Promise<TestDns> {
  await ensureDebianPackages([{ bin: DNSMASQ, pkg: "dnsmasq-base" }]);
  const port = await freePort();
  const records = Object.entries(txt).flatMap(([name, values]) =>
    (Array.isArray(values) ? values : [values]).map((value) => `--txt-record=${name},${value}`),
  );
  const child: ChildProcess = spawn(
    DNSMASQ,
    [
      "--keep-in-foreground",
      "--conf-file=/dev/null",
      "--no-resolv",
      "--no-hosts",
      "--pid-file=",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      // Every name is local: what is not listed is NXDOMAIN at once, never forwarded.
      "--local=/#/",
      ...records,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const server = `127.0.0.1:${port}`;
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([server]);
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    try {
      await resolver.resolveTxt("ready.invalid");
    } catch (err) {
      if ((err as { code?: string }).code === "ENOTFOUND") break;
      if (i > 50) throw new Error(`dnsmasq does not answer on ${server}: ${stderr}`, { cause: err });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return {
    server,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
