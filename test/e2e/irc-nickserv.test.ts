/**
 * IRC passwords a user stores: sealed in Redis, and the NickServ password sent only to the network's
 * services. A fake "NickServ" (a plain user who took the nick, as anyone can where services are down) never
 * receives it: the user is told instead. Without an encryption key the gateway stores no password at all.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNgircd, type IrcPeer } from "../bed/ngircd.js";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml, statusCodes, runCommand } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const SERVER = "svc.localhost";
const PASSWORD = "hunter2-nickserv";

const settings = (user: TestUser, domain: string, fields: Record<string, string>) =>
  runCommand(user, domain, "irc-server-settings", fields);

describe("IRC passwords: sealed at rest, NickServ only to the services", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let ircd: IrcPeer;
  let ircdDir: string | undefined;
  let gw: TestGateway;
  let keyless: TestGateway;
  let domain: string;
  let keylessDomain: string;
  let slot: number;
  let alice: TestUser;
  let fake: RawIrc;

  beforeAll(async () => {
    ircdDir = await mkdtemp(path.join(tmpdir(), "irc-svc-"));
    ircd = await startNgircd({ dir: ircdDir, name: SERVER });
    const irc = {
      servers: { allow: [SERVER] },
      tls: false,
      addresses: { [SERVER]: { host: "127.0.0.1", port: ircd.port } },
      lineDelayMs: 0,
    };
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    // Default services: NickServ must be on a server named services.*; this network has none.
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: { irc: { ...irc, passwordKeysEnv: "TEST_IRC_KEYS" } },
      env: { TEST_IRC_KEYS: randomBytes(32).toString("hex") },
    });
    const other = await takeSlot(bed);
    keylessDomain = slotDomain(other, "irc");
    keyless = await startTestGateway({ peer, redisUrl: bed.redis!.url, slot: other, adapters: { irc } });
    fake = await RawIrc.connect(ircd.port, "NickServ");
    alice = await TestUser.login(peer, `alice-svc-${slot}`);
  }, 60_000);

  afterAll(async () => {
    fake?.close();
    await alice?.stop();
    await gw?.stop();
    await keyless?.stop();
    await ircd?.stop();
    if (ircdDir) await rm(ircdDir, { recursive: true, force: true });
  });

  it("stores the NickServ password sealed: Redis does not hold it", async () => {
    const saved = await settings(alice, domain, { server: SERVER, nickservPassword: PASSWORD });
    expect(saved.attrs.type, saved.toString()).toBe("result");
    const redis = new Redis(bed.redis!.url);
    try {
      const raw = await redis.hget(`${gw.keyPrefix}settings:irc`, alice.bare);
      expect(raw).toContain(`${SERVER}/nickservPassword`);
      expect(raw).toContain("sealed:1:");
      expect(raw).not.toContain(PASSWORD);
    } finally {
      redis.disconnect();
    }
  });

  it("never sends the password to a NickServ that is a plain user, and tells the user so", async () => {
    const room = `#svc${slot}%${SERVER}@${domain}`;
    await alice.send(xml("presence", { to: `${room}/alice${slot}` }, xml("x", { xmlns: MUC })));
    await alice.waitFor((el) => el.name === "presence" && statusCodes(el).includes(110), 30_000);
    // The server JID also brings the server's MOTD: the notice is the message about NickServ.
    const notice = await alice.waitFor(
      (el) =>
        el.name === "message" &&
        el.attrs.from === `${SERVER}@${domain}` &&
        (el.getChildText("body") ?? "").includes("NickServ"),
      30_000,
    );
    expect(notice.getChildText("body")).toContain("NickServ password was not sent");
    // The notice comes once the gateway decided; a line sent before it would be here by now.
    fake.send(`PING :sync`);
    await fake.waitFor((l) => l.includes("PONG") && l.includes("sync"));
    expect(fake.lines.filter((l) => l.includes("PRIVMSG") || l.includes(PASSWORD))).toEqual([]);
  });

  it("seals a password an older release stored in plain text, once it is used", async () => {
    const carol = await TestUser.login(peer, `carol-svc-${slot}`);
    const redis = new Redis(bed.redis!.url);
    const key = `${gw.keyPrefix}settings:irc`;
    try {
      const legacy = { [`${SERVER}/nickservPassword`]: PASSWORD };
      await redis.hset(key, carol.bare, JSON.stringify({ v: 1, values: legacy }));
      const room = `#svc${slot}%${SERVER}@${domain}`;
      await carol.send(xml("presence", { to: `${room}/carol${slot}` }, xml("x", { xmlns: MUC })));
      await carol.waitFor((el) => el.name === "presence" && statusCodes(el).includes(110), 30_000);
      const raw = await redis.hget(key, carol.bare);
      expect(raw).toContain("sealed:1:");
      expect(raw).not.toContain(PASSWORD);
    } finally {
      redis.disconnect();
      await carol.stop();
    }
  });

  it("without an encryption key, refuses to store a password, with a text saying why", async () => {
    const answer = await settings(alice, keylessDomain, { server: SERVER, saslPassword: PASSWORD });
    expect(errorOf(answer).condition).toBe("feature-not-implemented");
    expect(errorOf(answer).text).toContain("does not store IRC passwords");
  });
});
