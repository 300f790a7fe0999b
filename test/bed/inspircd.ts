/**
 * An InspIRCd 3 for the IRCv3 tests (ngircd has none of it): server-time, message-tags and msgid,
 * echo-message, away-notify and multi-prefix (namesx), on a free loopback port, config written at run time.
 * Started on demand by the tests that need it (not part of the shared bed).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureDebianPackages } from "./apt.js";
import { ownServer } from "./owner.js";
import { freePort } from "./ports.js";
import { startServer, stopServer, type ServerSpec } from "./process.js";
import type { IrcPeer } from "./ngircd.js";

export const INSPIRCD = "/usr/sbin/inspircd";

/** IRCv3 modules loaded (InspIRCd 3 names: namesx is multi-prefix, ircv3 has away-notify). */
const MODULES = [
  "cap",
  "ircv3",
  "ircv3_ctctags",
  "ircv3_echomessage",
  "ircv3_msgid",
  "ircv3_servertime",
  "namesx",
];

function config(dir: string, name: string, port: number): string {
  return `<config format="xml">
# Written by test/bed/inspircd.ts: a throwaway InspIRCd for tests, loopback only.
<server name="${name}" description="xmpp-gateway test bed" network="TestBed">
<admin name="test bed" nick="test" email="root@localhost">
<bind address="127.0.0.1" port="${port}" type="clients">
<connect name="main" allow="*" maxchans="100" timeout="20" pingfreq="120" hardsendq="1M" softsendq="1M"
  recvq="64K" threshold="1000000" commandrate="1000000" fakelag="off" localmax="1000" globalmax="1000"
  useident="no" limit="5000" resolvehostnames="no">
<pid file="${path.join(dir, "inspircd.pid")}">
<options prefixquit="" allowzerolimit="no" defaultmodes="not">
<security hidesplits="no" announceinvites="dynamic" genericoper="no" restrictbannedusers="yes">
<performance clonesonconnect="no" netbuffersize="10240" somaxconn="128" softlimit="12800" timeskipwarn="0">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255" maxtopic="307"
  maxkick="255" maxreal="128" maxgecos="128" maxaway="200">
<dns timeout="1">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="${path.join(dir, "ircd.log")}">
${MODULES.map((m) => `<module name="${m}">`).join("\n")}
`;
}

/** Starts an InspIRCd (installing the Debian package if missing) in `dir`; owned by this process. */
export async function startInspircd(opts: { dir: string; name?: string }): Promise<IrcPeer> {
  await ensureDebianPackages([{ bin: INSPIRCD, pkg: "inspircd" }]);
  const name = opts.name ?? "v3.localhost";
  const port = await freePort();
  await mkdir(opts.dir, { recursive: true });
  const file = path.join(opts.dir, "inspircd.conf");
  await writeFile(file, config(opts.dir, name, port), { mode: 0o644 });
  const spec: ServerSpec = {
    name: "inspircd",
    dir: opts.dir,
    command: INSPIRCD,
    // In the foreground; the bed runs as root in its containers, which InspIRCd refuses unless told.
    args: ["--config", file, "--nofork", "--nopid", "--runasroot"],
    ports: [port],
    startTimeoutMs: 15_000,
  };
  ownServer(spec);
  await startServer(spec);
  return {
    host: "127.0.0.1",
    port,
    serverName: name,
    stop: () => stopServer(spec),
    start: () => startServer(spec),
    info: { dir: opts.dir, port, serverName: name },
  };
}
