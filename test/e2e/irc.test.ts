/**
 * IRC channels as XMPP rooms, as users see them: an XMPP user joins a channel of the test bed's ngircd
 * through the gateway while a raw IRC client sits in it; messages, private messages and /me both ways,
 * the sender's own message reflected with its id, an injection attempt, the topic, an IRC server restart,
 * leaving and the QUIT after grace.
 */
import { client } from "@xmpp/client";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNgircd, type IrcPeer } from "../bed/ngircd.js";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml, type Element, statusCodes } from "../support/client.js";
import { sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
/** The test sets a 1 s grace period; ISON is asked every ISON_PAUSE_MS, ISON_TRIES times at most. */
const ISON_PAUSE_MS = 250;
const ISON_TRIES = 20;

const itemOf = (el: Element) => el.getChild("x", MUC_USER)?.getChild("item")?.attrs ?? {};

describe("IRC channels as XMPP rooms", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const ircd = bed.irc!;
  let gw: TestGateway;
  let domain: string;
  let slot: number;
  let alice: TestUser;
  let carol: TestUser;
  let bob: RawIrc;
  let channel: string;
  let room: string;
  let bobNick: string;
  let aliceNick: string;
  /** A private IRC server that one test stops under a joined user. */
  let doomed: IrcPeer;
  let doomedDir: string | undefined;

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    channel = `#room${slot}`;
    bobNick = `Bob${slot}`;
    aliceNick = `alice${slot}`;
    room = `${channel}%${ircd.serverName}@${domain}`;
    doomedDir = await mkdtemp(path.join(tmpdir(), "irc-doomed-"));
    doomed = await startNgircd({ dir: doomedDir, name: "doomed.localhost" });
    gw = await startIrcGateway(bed, slot, {
      servers: { allow: [ircd.serverName, "down.localhost", "doomed.localhost"] },
      tls: false, // the bed's ngircd speaks plain IRC only
      addresses: {
        [ircd.serverName]: { host: "127.0.0.1", port: ircd.port },
        "down.localhost": { host: "127.0.0.1", port: 1 },
        "doomed.localhost": { host: "127.0.0.1", port: doomed.port },
      },
      graceSeconds: 1,
      lineDelayMs: 0,
      reconnectMaxSeconds: 2,
      reconnectNoticeSeconds: 1,
    });
    bob = await RawIrc.connect(ircd.port, bobNick);
    await bob.join(channel);
    // mIRC colour codes in the topic: users see the words only.
    bob.send(`TOPIC ${channel} :\x0304Welcome\x03 to the room`);
    await bob.waitFor((l) => l.includes(" TOPIC "));
    alice = await TestUser.login(peer, `alice-irc-${slot}`);
    carol = await TestUser.login(peer, `carol-irc-${slot}`);
  });

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await carol?.stop();
    await gw?.stop();
    await doomed?.stop();
    if (doomedDir) await rm(doomedDir, { recursive: true, force: true });
  });

  it("joins: the IRC users as occupants, the user's own presence last with 110, then the topic", async () => {
    const self = await alice.joinRoom(`${room}/${aliceNick}`);
    const occupants = alice.received.filter(
      (el) => el.name === "presence" && el.attrs.from?.startsWith(room),
    );
    const bobPresence = occupants.find((el) => el.attrs.from === `${room}/${bobNick}`);
    expect(bobPresence, alice.dump()).toBeDefined();
    expect(itemOf(bobPresence!)).toMatchObject({ role: "moderator", affiliation: "admin" });
    expect(occupants.indexOf(bobPresence!)).toBeLessThan(occupants.indexOf(self));
    const subject = await alice.waitFor(
      (el) => el.name === "message" && el.getChild("subject") !== undefined,
    );
    expect(subject.getChildText("subject")).toBe("Welcome to the room");
    expect(subject.getChild("body")).toBeUndefined();
    await bob.waitFor((l) => l.startsWith(`:${aliceNick}!`) && l.includes(` JOIN :${channel}`));
  });

  it("sends a room message to IRC and reflects it with the sender's id", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "g-1" }, xml("body", {}, "hello irc")),
    );
    await bob.waitFor((l) => l.startsWith(`:${aliceNick}!`) && l.endsWith(`PRIVMSG ${channel} :hello irc`));
    const echo = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "g-1");
    expect(echo.attrs).toMatchObject({ from: `${room}/${aliceNick}`, type: "groupchat" });
    expect(echo.getChildText("body")).toBe("hello irc");
  });

  it("shares the IRC connection with the user's other resource: no second JOIN, reflection to both", async () => {
    // A second session of alice's account (TestUser always binds the resource "test").
    const tablet = client({
      service: `xmpp://127.0.0.1:${peer.c2sPort}`,
      domain: peer.host,
      username: `alice-irc-${slot}`,
      password: `alice-irc-${slot}-pw`,
      resource: "tablet",
    });
    const got: Element[] = [];
    tablet.on("stanza", (el: Element) => got.push(el));
    tablet.on("error", () => undefined); // failures show as missing stanzas below
    await tablet.start();
    const until = async (match: (el: Element) => boolean): Promise<Element> => {
      for (let i = 0; i < 100; i++) {
        const el = got.find(match);
        if (el) return el;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`tablet: no matching stanza; got:\n${got.map((e) => e.toString()).join("\n")}`);
    };
    try {
      await tablet.send(xml("presence"));
      await tablet.send(xml("presence", { to: `${room}/${aliceNick}` }, xml("x", { xmlns: MUC })));
      await until((el) => el.attrs.from === `${room}/${aliceNick}` && statusCodes(el).includes(110));
      await until((el) => el.attrs.from === `${room}/${bobNick}` && el.name === "presence");
      await alice.send(
        xml("message", { to: room, type: "groupchat", id: "g-both" }, xml("body", {}, "to both")),
      );
      await until((el) => el.name === "message" && el.attrs.id === "g-both");
      await alice.waitFor((el) => el.name === "message" && el.attrs.id === "g-both");
      await tablet.send(xml("presence", { to: `${room}/${aliceNick}`, type: "unavailable" }));
      await until((el) => el.attrs.type === "unavailable" && el.attrs.from === `${room}/${aliceNick}`);
      // alice/test is still in the room: the channel stays joined, the IRC side saw one JOIN and no PART.
      await alice.send(
        xml("message", { to: room, type: "groupchat", id: "g-after" }, xml("body", {}, "still in")),
      );
      await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :still in`));
      const mine = bob.lines.filter((l) => l.startsWith(`:${aliceNick}!`));
      expect(mine.filter((l) => l.includes(" JOIN "))).toHaveLength(1);
      expect(mine.filter((l) => l.includes(" PART "))).toEqual([]);
    } finally {
      await tablet.stop().catch(() => undefined);
    }
  });

  it("shows IRC channel messages and actions from room/nick, and sends /me as an ACTION", async () => {
    bob.send(`PRIVMSG ${channel} :hi \x02xmpp\x02`);
    const msg = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "hi *xmpp*");
    expect(msg.attrs).toMatchObject({ from: `${room}/${bobNick}`, type: "groupchat" });
    bob.send(`PRIVMSG ${channel} :\x01ACTION dances\x01`);
    await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "/me dances");
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "g-2" }, xml("body", {}, "/me waves")),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :\x01ACTION waves\x01`));
  });

  it("reads a latin-1 line as such, answers CTCP VERSION and PING, and shows notices", async () => {
    bob.send(Buffer.concat([Buffer.from(`PRIVMSG ${channel} :caf`), Buffer.from([0xe9])]));
    await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "café");
    bob.send(`PRIVMSG ${aliceNick} :\x01VERSION\x01`);
    await bob.waitFor((l) => l.startsWith(`:${aliceNick}!`) && l.includes(`NOTICE ${bobNick} :\x01VERSION `));
    bob.send(`PRIVMSG ${aliceNick} :\x01PING 1795330000\x01`);
    await bob.waitFor(
      (l) => l.startsWith(`:${aliceNick}!`) && l.includes(`NOTICE ${bobNick} :\x01PING 1795330000\x01`),
    );
    bob.send(`NOTICE ${channel} :the build is green`);
    await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "the build is green");
  });

  it("answers a CTCP query sent to the channel once, not once per bridged user", async () => {
    // A second bridged user in the channel: two gateway connections read the query.
    const dora = await TestUser.login(peer, `dora-irc-${slot}`);
    const doraNick = `dora${slot}`;
    try {
      await dora.joinRoom(`${room}/${doraNick}`);
      const bobJid = `${bobNick.toLowerCase()}%${ircd.serverName}@${domain}`;
      const mark = bob.lines.length;
      bob.send(`PRIVMSG ${channel} :\x01PING 1795330042\x01`);
      // Each gateway connection has read the query once the line after it reached its user; what it wrote
      // before answering that (reply or not) reaches bob before the answer.
      for (const [user, nick, word] of [
        [alice, aliceNick, "over-a"],
        [dora, doraNick, "over-d"],
      ] as const) {
        bob.send(`PRIVMSG ${nick} :${word}`);
        await user.waitFor((el) => el.name === "message" && el.getChildText("body") === word);
        await user.send(
          xml("message", { to: bobJid, type: "chat", id: `ctcp-${word}` }, xml("body", {}, word)),
        );
        await bob.waitFor((l) => l.endsWith(`PRIVMSG ${bobNick} :${word}`));
      }
      const replies = bob.lines
        .slice(mark)
        .filter((l) => l.includes(`NOTICE ${bobNick} :\x01PING 1795330042\x01`));
      expect(replies, bob.lines.slice(mark).join("\n")).toHaveLength(1);
    } finally {
      await dora.stop();
    }
  });

  it("carries private messages both ways", async () => {
    bob.send(`PRIVMSG ${aliceNick} :psst`);
    const pm = await alice.waitFor((el) => el.name === "message" && el.getChildText("body") === "psst");
    const bobJid = `${bobNick.toLowerCase()}%${ircd.serverName}@${domain}`;
    expect(pm.attrs).toMatchObject({ from: bobJid, type: "chat" });
    await alice.send(xml("message", { to: bobJid, type: "chat", id: "p-1" }, xml("body", {}, "hi bob")));
    await bob.waitFor((l) => l.startsWith(`:${aliceNick}!`) && l.endsWith(`PRIVMSG ${bobNick} :hi bob`));
    // XEP-0045 §7.5: a private message through the room reaches the same nick.
    await alice.send(
      xml("message", { to: `${room}/${bobNick}`, type: "chat", id: "p-2" }, xml("body", {}, "via room")),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${bobNick} :via room`));
  });

  it("never lets a line break in a body become an IRC command", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "g-3" }, xml("body", {}, "\r\nQUIT :x")),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :QUIT :x`));
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "g-4" }, xml("body", {}, "still here")),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :still here`));
    expect(bob.lines.filter((l) => l.startsWith(`:${aliceNick}!`) && / QUIT /.test(l))).toEqual([]);
  });

  it("sends a multi-line body as one PRIVMSG per line", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "g-5" }, xml("body", {}, "first\n\nsecond\nthird")),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :third`));
    const said = bob.lines.filter(
      (l) => l.startsWith(`:${aliceNick}!`) && l.includes(`PRIVMSG ${channel} :`),
    );
    expect(said.slice(-3).map((l) => l.slice(l.indexOf(" :") + 2))).toEqual(["first", "second", "third"]);
  });

  it("shows IRC users joining, changing nick, leaving and quitting as occupants", async () => {
    const daveNick = `Dave${slot}`;
    const dave = await RawIrc.connect(ircd.port, daveNick);
    try {
      const presence = (from: string, type?: string) =>
        alice.waitFor(
          (el) => el.name === "presence" && el.attrs.from === `${room}/${from}` && el.attrs.type === type,
        );
      dave.send(`JOIN ${channel}`);
      expect(itemOf(await presence(daveNick))).toMatchObject({ role: "participant" });
      dave.send(`NICK ${daveNick}x`);
      const renamed = await presence(daveNick, "unavailable");
      expect(statusCodes(renamed)).toContain(303);
      expect(itemOf(renamed).nick).toBe(`${daveNick}x`);
      await presence(`${daveNick}x`);
      dave.send(`PART ${channel} :bye`);
      expect((await presence(`${daveNick}x`, "unavailable")).getChildText("status")).toBe("bye");
      const afterPart = alice.received.length;
      dave.send(`JOIN ${channel}`);
      await alice.waitFor(
        (el) =>
          alice.received.indexOf(el) >= afterPart &&
          el.name === "presence" &&
          el.attrs.from === `${room}/${daveNick}x` &&
          el.attrs.type === undefined,
      );
      dave.send("QUIT :gone home");
      const quit = await alice.waitFor(
        (el) =>
          alice.received.indexOf(el) >= afterPart &&
          el.attrs.from === `${room}/${daveNick}x` &&
          el.attrs.type === "unavailable",
      );
      // ngircd quotes the reason of a QUIT it relays.
      expect(quit.getChildText("status")).toContain("gone home");
    } finally {
      dave.close();
    }
  });

  it("refuses servers off the allow-list, unreachable servers and a nick in use, as MUC errors", async () => {
    const cases: [string, string][] = [
      [`#x%irc.elsewhere.net@${domain}/carol`, "forbidden"],
      [`#x%down.localhost@${domain}/carol`, "remote-server-not-found"],
      [`${channel}%${ircd.serverName}@${domain}/${bobNick}`, "conflict"],
    ];
    for (const [to, condition] of cases) {
      await carol.send(xml("presence", { to }, xml("x", { xmlns: MUC })));
      const error = await carol.waitFor(
        (el) => el.name === "presence" && el.attrs.type === "error" && el.attrs.from === to,
      );
      expect(errorOf(error).condition, carol.dump()).toBe(condition);
      expect(errorOf(error).text).toBeTruthy();
    }
  });

  it("tells a kicked user, with 307 and 110, who kicked them and why (without mIRC colours)", async () => {
    const carolRoom = `${room}/carol${slot}`;
    await carol.joinRoom(carolRoom);
    bob.send(`KICK ${channel} carol${slot} :\x0304behave\x03`);
    const kicked = await carol.waitFor(
      (el) => el.attrs.from === carolRoom && el.attrs.type === "unavailable",
    );
    expect(statusCodes(kicked)).toEqual(expect.arrayContaining([307, 110]));
    expect(kicked.getChildText("status")).toBe(`Kicked by ${bobNick}: behave`);
    // XEP-0045 §9.1: the kicker and the reason in the item.
    const item = kicked.getChild("x", MUC_USER)?.getChild("item");
    expect(item?.getChild("actor")?.attrs.nick).toBe(bobNick);
    expect(item?.getChildText("reason")).toBe("behave");
  });

  it("keeps the user in the room across an IRC server restart: told while it lasts, then joined again", async () => {
    const lostRoom = `#lost%doomed.localhost@${domain}`;
    await carol.joinRoom(`${lostRoom}/carol`);
    const mark = carol.received.length;
    const since = (el: Element) => carol.received.indexOf(el) >= mark;
    await doomed.stop();
    const notice = await carol.waitFor(
      (el) =>
        since(el) && el.name === "message" && el.attrs.from === lostRoom && el.getChild("body") !== undefined,
      20_000,
    );
    expect(notice.getChildText("body")).toContain("doomed.localhost");
    await doomed.start();
    const back = await carol.waitFor(
      (el) => since(el) && el.name === "message" && (el.getChildText("body") ?? "").includes("again"),
      30_000,
    );
    expect(back.attrs.from).toBe(lostRoom);
    // The user never left the room: no unavailable presence for their own occupant.
    expect(
      carol.received.filter(
        (el) => since(el) && el.attrs.from === `${lostRoom}/carol` && el.attrs.type === "unavailable",
      ),
    ).toEqual([]);
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(Number(/^xgw_irc_reconnects_total (\d+)$/m.exec(metrics)?.[1] ?? "0")).toBeGreaterThan(0);
    expect(Number(/^xgw_irc_connections_open (\d+)$/m.exec(metrics)?.[1] ?? "0")).toBeGreaterThan(0);
    const watcher = await RawIrc.connect(doomed.port, `watch${slot}`);
    try {
      watcher.send("JOIN #lost");
      const names = await watcher.waitFor((l) => / 353 /.test(l));
      expect(
        names
          .slice(names.lastIndexOf(":") + 1)
          .split(" ")
          .map((n) => n.replace(/^[@+]/, "")),
      ).toContain("carol");
      watcher.send("PRIVMSG #lost :welcome back");
      await carol.waitFor((el) => el.getChildText("body") === "welcome back");
    } finally {
      watcher.close();
    }
  });

  it("changes the IRC topic from a subject message", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "t-1" }, xml("subject", {}, "New topic\r\nQUIT")),
    );
    await bob.waitFor(
      (l) => l.startsWith(`:${aliceNick}!`) && l.endsWith(`TOPIC ${channel} :New topic QUIT`),
    );
    const subject = await alice.waitFor(
      (el) => el.name === "message" && el.getChildText("subject") === "New topic QUIT",
    );
    expect(subject.attrs.from).toBe(`${room}/${aliceNick}`);
  });

  it("tells the sender when the IRC server refuses a subject change, with the server's reason", async () => {
    // +t: only channel operators set the topic; bob is one, alice is not.
    bob.send(`MODE ${channel} +t`);
    await bob.waitFor((l) => l.includes(`MODE ${channel} +t`));
    try {
      await alice.send(
        xml("message", { to: room, type: "groupchat", id: "t-refused" }, xml("subject", {}, "Mine now")),
      );
      const refused = await alice.waitFor(
        (el) => el.name === "message" && el.attrs.id === "t-refused" && el.attrs.type === "error",
      );
      expect(errorOf(refused).condition, alice.dump()).toBe("forbidden");
      // The server's own text (ngircd: "You are not channel operator").
      expect(errorOf(refused).text).toMatch(/operator/i);
      expect(
        alice.received.filter((el) => el.name === "message" && el.getChildText("subject") === "Mine now"),
      ).toEqual([]);
    } finally {
      bob.send(`MODE ${channel} -t`);
      await bob.waitFor((l) => l.includes(`MODE ${channel} -t`));
    }
  });

  it("leaves: unavailable with 110, PART, and the IRC connection closes after the grace period", async () => {
    await alice.send(xml("presence", { to: `${room}/${aliceNick}`, type: "unavailable" }));
    const gone = await alice.waitFor(
      (el) =>
        el.name === "presence" && el.attrs.type === "unavailable" && el.attrs.from === `${room}/${aliceNick}`,
    );
    expect(statusCodes(gone)).toContain(110);
    await bob.waitFor((l) => l.startsWith(`:${aliceNick}!`) && l.includes(`PART ${channel}`));
    // The QUIT reaches only users sharing a channel, and the user left them all: ask the server (ISON,
    // RFC 2812 §4.9) until the gateway's connection is gone.
    for (let tries = 0; ; tries++) {
      bob.lines.length = 0;
      bob.send(`ISON ${aliceNick}`);
      const answer = await bob.waitFor((l) => / 303 /.test(l));
      if (!answer.includes(aliceNick)) break;
      expect(tries, "the IRC connection stays open after the grace period").toBeLessThan(ISON_TRIES);
      await new Promise((r) => setTimeout(r, ISON_PAUSE_MS));
    }
  });
});
