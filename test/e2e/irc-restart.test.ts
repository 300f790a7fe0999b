/**
 * IRC connections a user notices across restarts and settings: the user's own IRC settings (nick, NickServ
 * password) and per-channel forwarding through ad-hoc commands, channels joined again after a gateway
 * restart without the user doing anything, and an administrator disconnecting a user.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { UserSettings } from "../../src/store/settings.js";
import { slotDomain } from "../slots.js";
import { TestUser, xml, statusCodes, runCommand } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const COMMANDS = "http://jabber.org/protocol/commands";

/** The key that seals stored passwords, the same across the restarts. */
const KEYS = randomBytes(32).toString("base64");

describe("IRC settings and restarts", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const ircd = bed.irc!;
  let slot: number;
  let domain: string;
  let keyPrefix: string;
  let gw: TestGateway | undefined;
  let alice: TestUser;
  let admin: TestUser;
  let bob: RawIrc;
  let nickserv: RawIrc;
  let channel: string;
  let room: string;
  let ircNick: string;

  const start = () =>
    startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix,
      admins: [admin.bare],
      adapters: {
        irc: {
          servers: { fixed: ircd.serverName },
          tls: false,
          addresses: { [ircd.serverName]: { host: "127.0.0.1", port: ircd.port } },
          graceSeconds: 1,
          lineDelayMs: 0,
          passwordKeysEnv: "TEST_IRC_KEYS",
          // The bed has no services: the admins say NickServ is whoever holds the nick on this server.
          services: { nick: "NickServ", server: ircd.serverName },
        },
      },
      env: { TEST_IRC_KEYS: KEYS },
    });

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    keyPrefix = `irc-restart-${slot}:`;
    channel = `#again${slot}`;
    // The fixed server: rooms are #chan@domain (biboumi's fixed_irc_server addresses).
    room = `${channel}@${domain}`;
    ircNick = `Settled${slot}`;
    alice = await TestUser.login(peer, `alice-ircr-${slot}`);
    admin = await TestUser.login(peer, `admin-ircr-${slot}`);
    gw = await start();
    bob = await RawIrc.connect(ircd.port, `Bobr${slot}`);
    bob.send(`JOIN ${channel}`);
    await bob.waitFor((l) => / 366 /.test(l));
    // ngircd has no services: a plain client named NickServ sees what the gateway sends it.
    nickserv = await RawIrc.connect(ircd.port, "NickServ");
  });

  afterAll(async () => {
    bob?.close();
    nickserv?.close();
    await alice?.stop();
    await admin?.stop();
    await gw?.stop();
  });

  it("uses the nick and NickServ password from the user's server settings", async () => {
    const saved = await runCommand(alice, domain, "irc-server-settings", {
      server: ircd.serverName,
      nick: ircNick,
      nickservPassword: "s3cret",
    });
    expect(saved.attrs.type, saved.toString()).toBe("result");
    await alice.send(xml("presence", { to: `${room}/alice` }, xml("x", { xmlns: MUC })));
    const self = await alice.waitFor((el) => statusCodes(el).includes(110));
    // XEP-0045 §7.2.11: the service chose another nick than the one asked for: 210.
    expect(self.attrs.from?.toLowerCase()).toBe(`${room}/${ircNick}`.toLowerCase());
    expect(statusCodes(self)).toContain(210);
    await nickserv.waitFor(
      (l) => l.startsWith(`:${ircNick}!`) && l.endsWith("PRIVMSG NickServ :IDENTIFY s3cret"),
    );
    await bob.waitFor((l) => l.startsWith(`:${ircNick}!`) && l.includes(" JOIN "));
  });

  it("forwards only messages that mention the user's nick once the command has answered, however slow Redis is", async () => {
    // Redis slow to answer reads: the setting must be in force when the command says it is saved, not one
    // read later (a message sent right after the answer was forwarded anyway).
    // The real read, kept before the spy replaces it; always called with its store as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const realGet = UserSettings.prototype.get;
    const read = (store: UserSettings, user: string) => realGet.call(store, user);
    const slowRead = vi.spyOn(UserSettings.prototype, "get").mockImplementation(async function (
      this: UserSettings,
      user: string,
    ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return read(this, user);
    });
    try {
      const saved = await runCommand(alice, domain, "irc-channel-settings", { room, forward: "mentions" });
      expect(saved.attrs.type, saved.toString()).toBe("result");
      bob.send(`PRIVMSG ${channel} :nothing for you`);
      bob.send(`PRIVMSG ${channel} :${ircNick}: this one`);
      await alice.waitFor((el) => el.getChildText("body") === `${ircNick}: this one`);
      expect(alice.received.some((el) => el.getChildText("body") === "nothing for you")).toBe(false);
      await runCommand(alice, domain, "irc-channel-settings", { room, forward: "all" });
      bob.send(`PRIVMSG ${channel} :everything again`);
      await alice.waitFor((el) => el.getChildText("body") === "everything again");
    } finally {
      slowRead.mockRestore();
    }
  });

  it("joins the user's channels again after a gateway restart, without the user doing anything, with their forwarding", async () => {
    await runCommand(alice, domain, "irc-channel-settings", { room, forward: "mentions" });
    await gw?.stop();
    gw = undefined;
    await bob.waitFor((l) => l.startsWith(`:${ircNick}!`) && l.includes(" QUIT "));
    const joinsBefore = bob.lines.filter((l) => l.startsWith(`:${ircNick}!`) && l.includes(" JOIN ")).length;
    gw = await start();
    await bob.waitFor(
      () =>
        bob.lines.filter((l) => l.startsWith(`:${ircNick}!`) && l.includes(" JOIN ")).length > joinsBefore,
      20_000,
    );
    // The channel is still set to mentions only on the connection the restart opened.
    bob.send(`PRIVMSG ${channel} :not for you after the restart`);
    bob.send(`PRIVMSG ${channel} :${ircNick}: did you come back?`);
    const msg = await alice.waitFor(
      (el) => el.getChildText("body") === `${ircNick}: did you come back?`,
      20_000,
    );
    expect(msg.attrs.from).toBe(`${room}/Bobr${slot}`);
    expect(alice.received.some((el) => el.getChildText("body") === "not for you after the restart")).toBe(
      false,
    );
    await runCommand(alice, domain, "irc-channel-settings", { room, forward: "all" });
    // NickServ identification again on the new connection.
    await nickserv.waitFor(
      () => nickserv.lines.filter((l) => l.endsWith("PRIVMSG NickServ :IDENTIFY s3cret")).length >= 2,
    );
  });

  it("takes a resource whose room messages bounce out of the room; its rejoin brings what it missed", async () => {
    const since = new Date(Date.now() - 1_000).toISOString();
    bob.send(`PRIVMSG ${channel} :before the bounce`);
    await alice.waitFor((el) => el.getChildText("body") === "before the bounce");
    // What the XMPP server answers for a room line sent to a resource that is not there (its server restarted
    // and the client is not back yet): the bounce comes from the user's full JID, as this one does.
    await alice.send(
      xml(
        "message",
        { to: `${room}/${ircNick}`, id: "bounced-1", type: "error" },
        xml(
          "error",
          { type: "cancel" },
          xml("service-unavailable", { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" }),
        ),
      ),
    );
    // The resource is no occupant any more: its last one gone, the IRC connection leaves the channel.
    await bob.waitFor((l) => l.startsWith(`:${ircNick}!`) && l.includes(" PART "));
    // The client rejoins asking for what it may have missed since its last line: the lines sent to the gone
    // resource come back as history.
    await alice.send(
      xml("presence", { to: `${room}/alice` }, xml("x", { xmlns: MUC }, xml("history", { since }))),
    );
    const again = await alice.waitFor(
      (el) =>
        el.getChildText("body") === "before the bounce" &&
        el.getChild("delay", "urn:xmpp:delay") !== undefined,
    );
    expect(again.attrs.from).toBe(`${room}/Bobr${slot}`);
    await bob.waitFor(
      () => bob.lines.filter((l) => l.startsWith(`:${ircNick}!`) && l.includes(" JOIN ")).length >= 3,
    );
  });

  it("lets an administrator disconnect a user: QUIT on IRC, the user told they left", async () => {
    const done = await runCommand(admin, domain, "irc-disconnect-user", { jid: alice.bare });
    expect(done.getChild("command", COMMANDS)?.getChildText("note"), done.toString()).toContain("Closed 1");
    await bob.waitFor(
      () => bob.lines.filter((l) => l.startsWith(`:${ircNick}!`) && l.includes(" QUIT ")).length >= 2,
    );
    const gone = await alice.waitFor(
      (el) => el.attrs.from === `${room}/${ircNick}` && el.attrs.type === "unavailable",
    );
    expect(statusCodes(gone)).toContain(110);
    const denied = await runCommand(alice, domain, "irc-disconnect-user", { jid: alice.bare });
    expect(denied.attrs.type).toBe("error");
  });
});
