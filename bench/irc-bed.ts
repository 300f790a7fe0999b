/**
 * What the IRC benchmarks (bench/irc.ts, bench/irc-mam.ts) share: the bench's own ngircd on 127.0.0.1:6667
 * (biboumi has no per-server address alias and tries 6697/6670 (TLS) then 6667), XMPP users with a stanza
 * dispatcher, joining a room, waiting for a component to come online, the gateway's IRC adapter settings and
 * starting biboumi.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { client, xml, type Client, type Element } from "@xmpp/client";
import { ensureDebianPackages } from "../test/bed/apt.js";
import { startBed, type Bed, type XmppPeer } from "../test/bed/index.js";
import { NGIRCD } from "../test/bed/ngircd.js";
import { ownServer } from "../test/bed/owner.js";
import { startServer, stopServer, type ServerSpec } from "../test/bed/process.js";
import { windowed } from "./lib.js";

export const SECRET = "bench-secret";
export const GATEWAY = "irc.localhost";
export const BIBOUMI = "biboumi.localhost";
/** biboumi has no per-server address alias and tries 6697/6670 (TLS) then 6667: the bench's ngircd listens there. */
export const IRC_PORT = 6667;
export const IRC_NAME = "irc.bench";
export const MUC = "http://jabber.org/protocol/muc";
export const MUC_USER = "http://jabber.org/protocol/muc#user";
/** Logins and joins started at once. */
export const JOIN_WINDOW = 20;
/** How long a user waits for an expected stanza. */
const STANZA_TIMEOUT_MS = 60_000;
/** Disco#info probes before a component is declared offline, and the pause between them. */
const COMPONENT_PROBES = 200;
const COMPONENT_PROBE_MS = 1000;
const COMPONENT_RETRY_MS = 250;
/** How long biboumi gets to exit on SIGTERM before SIGKILL. */
const BIBOUMI_STOP_MS = 5000;

export const settle = (ms = 1500) => new Promise((r) => setTimeout(r, ms));

async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** The bench's own ngircd on 127.0.0.1:6667, with the limits raised for many connections from one IP. */
async function startIrc(dir: string, info: string): Promise<ServerSpec> {
  if (!(await portFree(IRC_PORT)))
    throw new Error(`127.0.0.1:${IRC_PORT} is taken; biboumi needs the IRC server there (stop what uses it)`);
  await mkdir(dir, { recursive: true });
  await chmod(path.dirname(dir), 0o755); // ngircd reads its config as 'nobody'
  await chmod(dir, 0o755);
  const conf = path.join(dir, "ngircd.conf");
  await writeFile(
    conf,
    `[Global]
    Name = ${IRC_NAME}
    Info = ${info}
    Listen = 127.0.0.1
    Ports = ${IRC_PORT}
    MotdPhrase = "bench"
    AdminInfo1 = bench
    AdminInfo2 = bench
    AdminEMail = root@localhost
[Limits]
    MaxConnections = 0
    MaxConnectionsIP = 0
    MaxJoins = 0
    MaxNickLength = 30
    MaxPenaltyTime = 0
    MaxListSize = 5000
[Options]
    PAM = no
    Ident = no
    DNS = no
[SSL]
    Ports =
`,
    { mode: 0o644 },
  );
  const spec: ServerSpec = {
    name: "ngircd",
    dir,
    command: NGIRCD,
    args: ["-n", "-f", conf],
    ports: [IRC_PORT],
    startTimeoutMs: 15_000,
  };
  ownServer(spec); // killed with this process, whatever happens
  await startServer(spec);
  return spec;
}

/**
 * What an IRC benchmark runs on: biboumi installed, a temporary folder (`tmpPrefix`), a bed with Prosody
 * (the `components` accepted with SECRET) and Redis, and the bench's ngircd (`info` its description).
 * stop() stops them and removes the folder.
 */
export async function startIrcBench(opts: {
  tmpPrefix: string;
  info: string;
  components: string[];
}): Promise<{ dir: string; bed: Bed; peer: XmppPeer; stop: () => Promise<void> }> {
  await ensureDebianPackages([{ bin: "/usr/bin/biboumi", pkg: "biboumi" }]);
  const dir = await mkdtemp(path.join(tmpdir(), opts.tmpPrefix));
  const bed = await startBed({
    ejabberd: false,
    irc: false,
    components: opts.components.map((domain) => ({ domain, secret: SECRET })),
  });
  const irc = await startIrc(path.join(dir, "ngircd"), opts.info);
  return {
    dir,
    bed,
    peer: bed.prosody!,
    stop: async () => {
      await stopServer(irc).catch(() => undefined);
      await bed.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface User {
  xmpp: Client;
  bare: string;
  nick: string;
  /** Called for each stanza. */
  handlers: Set<(el: Element) => void>;
}

/** Resolves when `user` gets a stanza matching `match`; rejects after `timeoutMs`. */
export function next(
  user: User,
  match: (el: Element) => boolean,
  timeoutMs = STANZA_TIMEOUT_MS,
): Promise<Element> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      user.handlers.delete(h);
      reject(new Error(`${user.bare}: no matching stanza in ${timeoutMs} ms`));
    }, timeoutMs);
    const h = (el: Element) => {
      if (!match(el)) return;
      clearTimeout(timer);
      user.handlers.delete(h);
      resolve(el);
    };
    user.handlers.add(h);
  });
}

/** Logs in `count` registered users `${prefix}0`…, password "pw"; their nicks are `${prefix}Nx`. */
export async function loginUsers(port: number, count: number, prefix: string): Promise<User[]> {
  const users: User[] = [];
  await windowed(count, JOIN_WINDOW, async (i) => {
    const xmpp = client({
      service: `xmpp://127.0.0.1:${port}`,
      domain: "localhost",
      username: `${prefix}${i}`,
      password: "pw",
      resource: "b",
    });
    const user: User = { xmpp, bare: `${prefix}${i}@localhost`, nick: `${prefix}${i}x`, handlers: new Set() };
    xmpp.on("stanza", (el: Element) => {
      for (const h of user.handlers) h(el);
    });
    xmpp.on("error", () => undefined);
    await xmpp.start();
    users[i] = user;
  });
  return users;
}

/** Waits until the component answers disco#info (it is connected to the XMPP server). */
export async function waitComponent(user: User, domain: string): Promise<void> {
  for (let i = 0; i < COMPONENT_PROBES; i++) {
    const id = `disco-${domain}-${i}`;
    const answer = next(user, (el) => el.name === "iq" && el.attrs.id === id, COMPONENT_PROBE_MS).catch(
      () => undefined,
    );
    await user.xmpp.send(
      xml(
        "iq",
        { type: "get", to: domain, id },
        xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
      ),
    );
    if ((await answer)?.attrs.type === "result") return;
    await settle(COMPONENT_RETRY_MS);
  }
  throw new Error(`${domain} never came online`);
}

/**
 * Joins every user to `room` (nick plus `suffix`: two gateways on the same ngircd need different nicks) and
 * waits for each self-presence; `noHistory` asks for no history. Returns the milliseconds it took.
 */
export async function join(
  users: User[],
  room: string,
  opts: { suffix?: string; noHistory?: boolean } = {},
): Promise<number> {
  return windowed(users.length, JOIN_WINDOW, async (i) => {
    const u = users[i]!;
    const from = `${room}/${u.nick}${opts.suffix ?? ""}`;
    const self = next(
      u,
      (el) =>
        el.name === "presence" &&
        el.attrs.from === from &&
        (el.getChild("x", MUC_USER)?.getChildren("status") ?? []).some((s) => s.attrs.code === "110"),
    );
    const x = opts.noHistory
      ? xml("x", { xmlns: MUC }, xml("history", { maxstanzas: "0" }))
      : xml("x", { xmlns: MUC });
    await u.xmpp.send(xml("presence", { to: from }, x));
    await self;
  });
}

/** The gateway's IRC adapter on the bench's ngircd: no TLS, no flood control, room for every user. */
export function ircAdapterConfig() {
  return {
    domain: GATEWAY,
    secretEnv: "GW_SECRET",
    servers: { allow: [IRC_NAME] },
    tls: false,
    addresses: { [IRC_NAME]: { host: "127.0.0.1", port: IRC_PORT } },
    graceSeconds: 1,
    lineDelayMs: 0,
    maxConnectionsPerServer: 10_000,
  };
}

/** biboumi as a component of the XMPP server on `componentPort`, its configuration in `cfg`, its SQLite in `db`. */
export async function startBiboumi(opts: {
  cfg: string;
  db: string;
  componentPort: number;
}): Promise<{ pid: number; stop(): Promise<void> }> {
  await writeFile(
    opts.cfg,
    [
      `hostname=${BIBOUMI}`,
      `password=${SECRET}`,
      "xmpp_server_ip=127.0.0.1",
      `port=${opts.componentPort}`,
      "admin=",
      "identd_port=0",
      `db_name=${opts.db}`,
      "log_level=2",
      "realname_customization=true",
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn("/usr/bin/biboumi", [opts.cfg], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (child.pid === undefined) throw new Error("biboumi did not start");
  const exited = once(child, "exit");
  return {
    pid: child.pid,
    stop: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, settle(BIBOUMI_STOP_MS)]);
      child.kill("SIGKILL");
    },
  };
}
