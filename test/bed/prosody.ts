import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePorts } from "./ports.js";
import { ownServer } from "./owner.js";
import { type ServerSpec, startServer, stopServer } from "./process.js";
import { type ComponentConfig, type XmppInfo, type XmppPeer, xmppPeer } from "./xmpp.js";

export const PROSODY = "/usr/bin/prosody";
export type { ComponentConfig, XmppInfo, XmppPeer } from "./xmpp.js";

/** A Lua string literal (double quotes; control characters and non-ASCII bytes as \ddd). */
function lua(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, "utf8")) {
    const ch = String.fromCharCode(byte);
    out +=
      byte < 0x20 || byte > 0x7e || ch === '"' || ch === "\\" ? `\\${byte.toString().padStart(3, "0")}` : ch;
  }
  return `${out}"`;
}

const configPath = (dir: string): string => path.join(dir, "prosody.cfg.lua");

function prosodyConfig(info: XmppInfo, nagle: boolean): string {
  const { dir } = info;
  const components = info.components
    .map((c) => `Component ${lua(c.domain)}\n    component_secret = ${lua(c.secret)}\n`)
    .join("");
  return `-- Written by test/bed/prosody.ts: a throwaway Prosody for tests, loopback only.
run_as_root = true -- else prosody setuid()s to 'prosody'
daemonize = false
data_path = ${lua(path.join(dir, "data"))}
pidfile = ${lua(path.join(dir, "prosody.pid"))}
log = { info = "*console" } -- stdout, i.e. prosody.log in this dir
certificates = ${lua(path.join(dir, "certs"))} -- empty: no STARTTLS offered
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
component_interface = "127.0.0.1"
c2s_ports = { ${info.c2sPort} }
component_ports = { ${info.componentPort} }
c2s_direct_tls_ports = { }
s2s_ports = { }
http_ports = { }
https_ports = { }

modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "posix"; "offline"; "register"; "presence" }
modules_disabled = { "s2s" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
storage = "internal"
-- Test speed: SCRAM logins take ~30 ms instead of ~1 s (PBKDF2 in @xmpp/client is slow).
default_iteration_count = 128
${nagle ? "" : "-- A stanza leaves when written, not once the previous one was acknowledged (docs/deployment.md).\nnetwork_settings = { nagle = false }\n"}
-- In-band registration (XEP-0077) over plain TCP, unthrottled for loopback: the bed creates
-- accounts this way (prosodyctl register costs a Lua start-up per account).
allow_registration = true
registration_allowlist = { "127.0.0.1", "::1" }

VirtualHost ${lua(info.host)}

${components}`;
}

function prosodySpec(info: XmppInfo): ServerSpec {
  return {
    name: "prosody",
    dir: info.dir,
    command: PROSODY,
    args: ["-F", "--config", configPath(info.dir)],
    ports: [info.c2sPort, info.componentPort],
    startTimeoutMs: 20_000,
  };
}

/** An XmppPeer for an already-configured Prosody (e.g. from a Vitest worker). */
export function attachProsody(info: XmppInfo): XmppPeer {
  const spec = prosodySpec(info);
  return xmppPeer(info, { start: () => startServer(spec), stop: () => stopServer(spec) }, 4);
}

/**
 * Writes a Prosody config in `dir` (c2s and component ports chosen free on 127.0.0.1) and starts
 * Prosody in the foreground; owned by this process.
 */
export async function startProsody(opts: {
  dir: string;
  host: string;
  components: ComponentConfig[];
  /** Nagle's algorithm on Prosody's connections (its default: true). */
  nagle?: boolean;
}): Promise<XmppPeer> {
  const { dir, host, components } = opts;
  const [c2sPort = 0, componentPort = 0] = await freePorts(2);
  const info: XmppInfo = { kind: "prosody", dir, host, c2sPort, componentPort, components };
  await mkdir(path.join(dir, "data"), { recursive: true });
  await mkdir(path.join(dir, "certs"), { recursive: true });
  await writeFile(configPath(dir), prosodyConfig(info, opts.nagle ?? true));
  const spec = prosodySpec(info);
  ownServer(spec);
  await startServer(spec);
  return attachProsody(info);
}
