/**
 * IRC over TLS (RFC 7194), certificate verified: an IRC server whose certificate the gateway cannot verify
 * is refused, and the user is told why; once the certificate is trusted (here through NODE_EXTRA_CA_CERTS,
 * the way an operator adds a private CA), the same join works and messages reach the IRC side.
 */
import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDebianPackages } from "../bed/apt.js";
import type { IrcPeer } from "../bed/index.js";
import { startNgircd } from "../bed/ngircd.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { errorOf, TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const CHANNEL = "#tls";

describe("IRC over TLS", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let dir: string;
  let certFile: string;
  let ircd: IrcPeer;
  let slot: number;
  let domain: string;
  let user: TestUser;
  let trusted: GatewayProcess | undefined;

  const ircConfig = () => ({
    servers: { fixed: ircd.serverName },
    tls: true,
    addresses: { [ircd.serverName]: { host: "127.0.0.1", port: ircd.info.tls!.port } },
    lineDelayMs: 0,
  });
  const join = (nick: string) =>
    user.send(xml("presence", { to: `${CHANNEL}@${domain}/${nick}` }, xml("x", { xmlns: MUC })));

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    dir = await mkdtemp(path.join(tmpdir(), "gw-irc-tls-"));
    await chmod(dir, 0o755);
    await ensureDebianPackages([{ bin: "/usr/bin/openssl", pkg: "openssl" }]);
    certFile = path.join(dir, "cert.pem");
    const keyFile = path.join(dir, "key.pem");
    // A self-signed certificate for 127.0.0.1: trusted by nobody until the operator says so.
    await promisify(execFile)("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"],
      ...["-keyout", keyFile, "-out", certFile, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    ]);
    // ngircd reads them after dropping privileges to 'nobody'.
    await chmod(keyFile, 0o644);
    ircd = await startNgircd({ dir: path.join(dir, "irc"), tls: { certFile, keyFile } });
    user = await TestUser.login(peer, `tls-${slot}`);
  });

  afterAll(async () => {
    await user?.stop();
    await trusted?.kill("SIGTERM");
    await ircd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a server whose certificate it cannot verify, and says so", async () => {
    const gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: { irc: ircConfig() },
    });
    try {
      await join("tlsuser");
      const error = await user.waitFor(
        (el) =>
          el.name === "presence" && el.attrs.type === "error" && el.attrs.from?.startsWith(CHANNEL) === true,
        20_000,
      );
      expect(errorOf(error).condition).toBe("remote-server-not-found");
      expect(errorOf(error).text).toMatch(/certificate/i);
    } finally {
      await gw.stop();
    }
  });

  it("connects with TLS once the certificate is trusted, and carries messages", async () => {
    const config = testConfig({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: `irc-tls-${slot}:`,
      adapters: { irc: ircConfig() },
    });
    trusted = await spawnGateway({
      dir,
      name: "trusting",
      config,
      env: { TEST_ECHO_SECRET: TEST_SECRET, NODE_EXTRA_CA_CERTS: certFile },
    });
    await trusted.waitLog("component stream online", {
      where: () => trusted!.lines.filter((l) => l.msg === "component stream online").length >= 2,
    });
    const bob = await RawIrc.connect(ircd.port, "bobtls");
    try {
      bob.send(`JOIN ${CHANNEL}`);
      await bob.waitFor((l) => / 366 /.test(l));
      const from = user.received.length;
      await join("tlsuser");
      await user.waitFor(
        (el) =>
          user.received.indexOf(el) >= from &&
          el.name === "presence" &&
          el.attrs.from === `${CHANNEL}@${domain}/tlsuser` &&
          el.attrs.type === undefined,
        20_000,
      );
      await user.send(
        xml(
          "message",
          { to: `${CHANNEL}@${domain}`, type: "groupchat", id: "tls-1" },
          xml("body", {}, "over TLS"),
        ),
      );
      await bob.waitFor((l) => l.includes(`PRIVMSG ${CHANNEL} :over TLS`));
    } finally {
      bob.close();
    }
  });
});
