import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort } from "./ports.js";
import { ownServer } from "./owner.js";
import { type ServerSpec, startServer, stopServer } from "./process.js";

export const NGIRCD = "/usr/sbin/ngircd";

/** Plain data describing a started ngircd: pass it to attachNgircd() in another process. */
export interface IrcInfo {
  dir: string;
  port: number;
  serverName: string;
  /** A second port speaking TLS (RFC 7194), with this certificate and key (PEM files readable by all). */
  tls?: { port: number; certFile: string; keyFile: string };
  /** A message of the day of several lines (a file), instead of the one-line MotdPhrase. */
  motdFile?: string;
}

/** A running ngircd on loopback (plain TCP, no flood penalties, no ident/DNS/PAM). */
export interface IrcPeer {
  host: "127.0.0.1";
  port: number;
  serverName: string;
  stop(): Promise<void>;
  /** Starts again on the same port (IRC keeps no state across restarts). */
  start(): Promise<void>;
  info: IrcInfo;
}

const configPath = (dir: string): string => path.join(dir, "ngircd.conf");

function ngircdConfig(info: IrcInfo): string {
  return `# Written by test/bed/ngircd.ts: a throwaway ngircd for tests, loopback only.
[Global]
    Name = ${info.serverName}
    Info = xmpp-gateway test bed
    Listen = 127.0.0.1
    Ports = ${info.port}
    ${info.motdFile ? `MotdFile = ${info.motdFile}` : 'MotdPhrase = "test bed"'}
    AdminInfo1 = test bed
    AdminInfo2 = test bed
    AdminEMail = root@localhost
[Limits]
    # No limits on connections per IP or channels per user (tests open many).
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    # Else ngircd delays each client's commands (WHOIS answered after 1 s, JOIN after 2 s).
    MaxPenaltyTime = 0
[Options]
    # Debian builds ngircd with PAM: without this, every client waits for a PAM login.
    PAM = no
    Ident = no
    DNS = no
[SSL]
${
  info.tls
    ? `    Ports = ${info.tls.port}
    CertFile = ${info.tls.certFile}
    KeyFile = ${info.tls.keyFile}`
    : "    Ports ="
}
`;
}

function ngircdSpec(info: IrcInfo): ServerSpec {
  return {
    name: "ngircd",
    dir: info.dir,
    command: NGIRCD,
    // -n: no fork, logs to stdout. As root, ngircd switches to 'nobody' after binding.
    args: ["-n", "-f", configPath(info.dir)],
    ports: info.tls ? [info.port, info.tls.port] : [info.port],
    startTimeoutMs: 15_000,
  };
}

/** An IrcPeer for an already-configured ngircd (e.g. from a Vitest worker). */
export function attachNgircd(info: IrcInfo): IrcPeer {
  const spec = ngircdSpec(info);
  return {
    host: "127.0.0.1",
    port: info.port,
    serverName: info.serverName,
    stop: () => stopServer(spec),
    start: () => startServer(spec),
    info,
  };
}

/** Writes an ngircd config in `dir` (port chosen free on 127.0.0.1) and starts it; owned by this process. */
export async function startNgircd(opts: {
  dir: string;
  name?: string;
  tls?: { certFile: string; keyFile: string };
  /** Lines of the message of the day (default: the one line "test bed"). */
  motd?: string[];
}): Promise<IrcPeer> {
  const info: IrcInfo = {
    dir: opts.dir,
    port: await freePort(),
    serverName: opts.name ?? "irc.localhost",
    ...(opts.tls ? { tls: { ...opts.tls, port: await freePort() } } : {}),
    ...(opts.motd ? { motdFile: path.join(opts.dir, "ngircd.motd") } : {}),
  };
  await mkdir(opts.dir, { recursive: true });
  if (opts.motd && info.motdFile)
    await writeFile(info.motdFile, `${opts.motd.join("\n")}\n`, { mode: 0o644 });
  // ngircd reads its config (and MOTD) as 'nobody' after dropping privileges.
  await chmod(opts.dir, 0o755);
  await writeFile(configPath(opts.dir), ngircdConfig(info), { mode: 0o644 });
  const spec = ngircdSpec(info);
  ownServer(spec);
  await startServer(spec);
  return attachNgircd(info);
}
