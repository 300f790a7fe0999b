import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chown, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePorts } from "./ports.js";
import { ownServer } from "./owner.js";
import { isRunning, type ServerSpec, startServer, stopServer, waitForExit } from "./process.js";
import { type ComponentConfig, type XmppInfo, type XmppPeer, xmppPeer } from "./xmpp.js";

export const EJABBERDCTL = "/usr/sbin/ejabberdctl";
export type { ComponentConfig, XmppInfo, XmppPeer } from "./xmpp.js";

/** ejabberd refused to start or stop. */
export class EjabberdError extends Error {
  override name = "EjabberdError";
}

const q = (value: string): string => JSON.stringify(value); // YAML is a superset of JSON

async function ejabberdUser(): Promise<{ uid: number; gid: number }> {
  const line = (await readFile("/etc/passwd", "utf8")).split("\n").find((l) => l.startsWith("ejabberd:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) throw new EjabberdError("no 'ejabberd' user in /etc/passwd");
  return { uid: Number(uid), gid: Number(gid) };
}

function ejabberdYml(info: XmppInfo): string {
  const services = info.components.map((c) => `      ${q(c.domain)}: {password: ${q(c.secret)}}`).join("\n");
  const domains = info.components.map((c) => q(c.domain)).join(", ");
  const balanced = info.components.flatMap((c) =>
    c.balancing
      ? [`  ${q(c.domain)}: {type: ${c.balancing.by}, component_number: ${c.balancing.instances}}`]
      : [],
  );
  const balancing = balanced.length ? `domain_balancing:\n${balanced.join("\n")}\n` : "";
  return `# Written by test/bed/ejabberd.ts: a throwaway ejabberd for tests, loopback only.
hosts: [${q(info.host)}]
loglevel: info
log_rotate_count: 0
certfiles: []
listen:
  - {port: ${info.c2sPort}, ip: "127.0.0.1", module: ejabberd_c2s, starttls: false,
     starttls_required: false, access: c2s, max_stanza_size: 1048576, backlog: 1024}
  - port: ${info.componentPort}
    ip: "127.0.0.1"
    module: ejabberd_service
    # Each component gets only its own domain (the default routes every listed domain to every
    # connected component, mixing parallel tests' stanzas).
    global_routes: false
    backlog: 1024
    max_stanza_size: 1048576
    hosts:
${services}
auth_method: internal
# SCRAM costs ~0.4 s per @xmpp/client login here (ejabberd fixes 4096 PBKDF2 rounds). PLAIN is
# offered too, but @xmpp/client 0.14 only picks it over TLS, unless given a credentials function.
disable_sasl_mechanisms: ["DIGEST-MD5", "X-OAUTH2"]
registration_timeout: infinity
${balancing}max_fsm_queue: 1000000
acl:
  local: {user_regexp: ""}
  loopback: {ip: ["127.0.0.0/8", "::1/128"]}
access_rules:
  local: {allow: local}
  c2s: {allow: all}
  register: {allow: all}
  trusted_network: {allow: loopback}
api_permissions:
  "console commands": {from: [ejabberd_ctl], who: all, what: "*"}
shaper_rules:
  max_user_sessions: 1000
  max_user_offline_messages: 100000
modules:
  mod_roster: {}
  mod_disco: {extra_domains: [${domains}]}
  mod_ping: {}
  mod_offline: {access_max_user_messages: max_user_offline_messages}
  mod_register: {access: register, ip_access: trusted_network, password_strength: 0, welcome_message: {subject: "", body: ""}}
  # No mod_stream_mgmt: @xmpp/client 0.14 (the tests' user) miscounts XEP-0198 acks against ejabberd
  # ("Client acknowledged more stanzas than sent by server") and then drops the session.
`;
}

function ejabberdctlCfg(info: XmppInfo, erlang: NonNullable<XmppInfo["erlang"]>): string {
  return `# Written by test/bed/ejabberd.ts. ERL_DIST_PORT: no epmd daemon.
ERLANG_NODE=${erlang.node}
ERL_DIST_PORT=${erlang.distPort}
ERL_EPMD_ADDRESS=127.0.0.1
ERL_OPTIONS="-setcookie ${erlang.cookie} -kernel inet_dist_use_interface {127,0,0,1}"
EJABBERD_PID_PATH=${info.dir}/ejabberd.pid
EJABBERD_BYPASS_WARNINGS=true
`;
}

const ctlPrefix = (dir: string): string[] => [
  ...["-c", path.join(dir, "ejabberdctl.cfg"), "-f", path.join(dir, "ejabberd.yml")],
  ...["-s", path.join(dir, "db"), "-l", path.join(dir, "log")],
];

function ejabberdSpec(info: XmppInfo, user: { uid: number; gid: number }): ServerSpec {
  return {
    name: "ejabberd",
    dir: info.dir,
    command: EJABBERDCTL,
    args: [...ctlPrefix(info.dir), "foreground"],
    // Started as the ejabberd user, so ejabberdctl runs erl directly instead of through `su`
    // (which would put beam.smp in a new session, out of reach of the process-group signals).
    ...user,
    env: { HOME: info.dir, USER: "ejabberd", LOGNAME: "ejabberd" },
    ports: [info.c2sPort, info.componentPort],
    startTimeoutMs: 60_000,
    stopTimeoutMs: 15_000,
  };
}

/** Runs `ejabberdctl <prefix> <args>` as the ejabberd user (e.g. `status`, `register u h pw`). */
export async function ejabberdctl(info: XmppInfo, args: string[], timeoutMs = 30_000): Promise<string> {
  const user = await ejabberdUser();
  return new Promise((resolve, reject) => {
    execFile(
      EJABBERDCTL,
      [...ctlPrefix(info.dir), ...args],
      { ...user, cwd: info.dir, timeout: timeoutMs, env: { ...process.env, HOME: info.dir } },
      (err, stdout, stderr) =>
        err
          ? reject(new EjabberdError(`ejabberdctl ${args.join(" ")}: ${err.message}\n${stdout}${stderr}`))
          : resolve(stdout),
    );
  });
}

/**
 * Stops ejabberd: `ejabberdctl stop` (a clean shutdown of the node, ~3 s of which ~2 s is starting
 * the ctl node), then whatever is left of the process group (ejabberdctl, beam.smp) gets SIGTERM
 * and, after a grace period, SIGKILL.
 */
async function stopEjabberdServer(info: XmppInfo, spec: ServerSpec): Promise<void> {
  if (!(await isRunning(spec))) return stopServer(spec);
  // A bare SIGTERM right after start-up crashed Mnesia once; `stop` shuts down in order.
  const stopped = await ejabberdctl(info, ["stop"], 15_000).then(
    () => true,
    () => false,
  );
  if (stopped) await waitForExit(spec, 10_000);
  await stopServer(spec);
}

/** An XmppPeer for an already-configured ejabberd (e.g. from a Vitest worker). */
export function attachEjabberd(info: XmppInfo): XmppPeer {
  const spec = async (): Promise<ServerSpec> => ejabberdSpec(info, await ejabberdUser());
  return xmppPeer(
    info,
    {
      start: async () => startServer(await spec()),
      stop: async () => stopEjabberdServer(info, await spec()),
    },
    // ejabberd's c2s listener copes with a few parallel streams; more only adds contention.
    4,
  );
}

/**
 * Writes an ejabberd config in `dir` (c2s, component and Erlang distribution ports chosen free on
 * 127.0.0.1, node name unique per run) and starts ejabberd in the foreground; owned by this process.
 */
export async function startEjabberd(opts: {
  dir: string;
  host: string;
  components: ComponentConfig[];
}): Promise<XmppPeer> {
  const { dir, host, components } = opts;
  const [c2sPort = 0, componentPort = 0, distPort = 0] = await freePorts(3);
  const id = randomBytes(4).toString("hex");
  const erlang = {
    node: `gwbed-${id}@localhost`,
    distPort,
    cookie: `gwbed${randomBytes(12).toString("hex")}`,
  };
  const info: XmppInfo = { kind: "ejabberd", dir, host, c2sPort, componentPort, components, erlang };
  const user = await ejabberdUser();
  for (const sub of ["db", "log"]) await mkdir(path.join(dir, sub), { recursive: true });
  await writeFile(path.join(dir, "ejabberd.yml"), ejabberdYml(info), { mode: 0o640 });
  await writeFile(path.join(dir, "ejabberdctl.cfg"), ejabberdctlCfg(info, erlang), { mode: 0o640 });
  await chown(dir, user.uid, user.gid);
  for (const entry of await readdir(dir, { recursive: true })) {
    await chown(path.join(dir, entry), user.uid, user.gid);
  }
  const spec = ejabberdSpec(info, user);
  ownServer(spec);
  await startServer(spec);
  return attachEjabberd(info);
}
