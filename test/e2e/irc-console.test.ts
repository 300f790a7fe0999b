/**
 * The IRC server JID as users see it, on a private ngircd with a message of the day of several lines:
 * the MOTD as one message, the server console (a WHOIS answered in one readable message; PRIVMSG and a
 * line break refused, nothing reaching IRC), the channel list as disco#items with counts and topics, paged
 * with XEP-0059 and answered from a copy for a while, and what the server JID says it offers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNgircd, type IrcPeer } from "../bed/ngircd.js";
import { startInspircd } from "../bed/inspircd.js";
import { errorOf, TestUser, xml, type Element } from "../support/client.js";
import { plainIrc, sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";
import { slotDomain } from "../slots.js";

const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const RSM = "http://jabber.org/protocol/rsm";
const SERVER = "console.localhost";
const MOTD = ["Welcome to the console test bed.", "Be nice.", "Third line of the MOTD."];

const bodyOf = (el: Element): string => el.getChildText("body") ?? "";

/**
 * A scripted IRC server for what ngircd does not do: it registers the client with a notice and no MOTD,
 * then answers LIST with RPL_TRYAGAIN (263) and a server notice ("busy"), or never ("mute").
 */
async function scriptedIrc(name: string, list: "busy" | "mute"): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    let nick = "*";
    let buffer = "";
    const say = (line: string) => socket.write(`:${name} ${line}\r\n`);
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split("\r\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        const [command = "", arg = ""] = line.split(" ");
        if (command === "NICK") nick = arg;
        else if (command === "USER") {
          say(`NOTICE ${nick} :*** Checking you out`);
          say(`001 ${nick} :Welcome to ${name}`);
          say(`422 ${nick} :MOTD File is missing`);
        } else if (command === "PING") say(`PONG ${name} ${arg}`);
        else if (command === "LIST" && list === "busy") {
          say(`263 ${nick} LIST :Server load is temporarily too heavy. Please wait a while and try again.`);
          say(`NOTICE ${nick} :Maintenance at noon`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port };
}

describe("the IRC server JID: MOTD, console and channel list", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let ircd: IrcPeer;
  let ircdDir: string | undefined;
  let gw: TestGateway;
  let domain: string;
  let serverJid: string;
  let alice: TestUser;
  let bob: RawIrc;
  let carol: RawIrc;
  let slot: number;
  let bobNick: string;
  let aliceNick: string;
  let insp: IrcPeer;
  let inspDir: string | undefined;
  let busy: Awaited<ReturnType<typeof scriptedIrc>>;
  let mute: Awaited<ReturnType<typeof scriptedIrc>>;

  const fromServer = (el: Element) =>
    el.name === "message" && el.attrs.from === serverJid && el.attrs.type !== "error";
  const items = (answer: Element) =>
    (answer.getChild("query", DISCO_ITEMS)?.getChildren("item") ?? []).map((i) => ({
      jid: i.attrs.jid as string,
      name: i.attrs.name as string,
    }));
  const rsmSet = (answer: Element) => answer.getChild("query", DISCO_ITEMS)?.getChild("set", RSM);
  const discoItems = (set?: Element) =>
    alice.iq("get", serverJid, xml("query", { xmlns: DISCO_ITEMS }, ...(set ? [set] : [])), 30_000);
  const roomJid = (channel: string) => `${channel}%${SERVER}@${domain}`;
  /** LIST commands the gateway sent ("irc") and lists answered from the copy ("cache"), from its metrics. */
  const listed = async (source: "irc" | "cache"): Promise<number> => {
    const metric = gw.gateway.metrics.registry.getSingleMetric("xgw_irc_channel_lists_total");
    const values = (await metric?.get())?.values ?? [];
    return values.find((v) => v.labels.source === source)?.value ?? 0;
  };

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    serverJid = `${SERVER}@${domain}`;
    bobNick = `Bob${slot}`;
    aliceNick = `alice${slot}`;
    ircdDir = await mkdtemp(path.join(tmpdir(), "irc-console-"));
    ircd = await startNgircd({ dir: ircdDir, name: SERVER, motd: MOTD });
    inspDir = await mkdtemp(path.join(tmpdir(), "irc-console-insp-"));
    insp = await startInspircd({ dir: inspDir });
    busy = await scriptedIrc("busy.localhost", "busy");
    mute = await scriptedIrc("mute.localhost", "mute");
    gw = await startIrcGateway(bed, slot, {
      ...plainIrc({
        [SERVER]: ircd.port,
        [insp.serverName]: insp.port,
        "busy.localhost": busy.port,
        "mute.localhost": mute.port,
      }),
      graceSeconds: 30,
      channelListTimeoutSeconds: 3,
    });
    bob = await RawIrc.connect(ircd.port, bobNick);
    carol = await RawIrc.connect(ircd.port, `Carol${slot}`);
    alice = await TestUser.login(peer, aliceNick);
  });

  afterAll(async () => {
    bob?.close();
    carol?.close();
    await alice?.stop();
    await gw?.stop();
    await ircd?.stop();
    await insp?.stop();
    for (const dir of [ircdDir, inspDir]) if (dir) await rm(dir, { recursive: true, force: true });
    busy?.server.close();
    mute?.server.close();
  });

  it("connects for a console command and shows the server's MOTD as one message", async () => {
    await alice.send(xml("message", { to: serverJid, type: "chat", id: "c-time" }, xml("body", {}, "TIME")));
    const motd = await alice.waitFor((el) => fromServer(el) && bodyOf(el).includes(MOTD[0]!), 30_000);
    for (const line of MOTD) expect(bodyOf(motd)).toContain(line);
    // The TIME reply comes as its own message, after the MOTD.
    await alice.waitFor((el) => fromServer(el) && bodyOf(el).startsWith(`${SERVER}:`), 20_000);
    await alice.sync();
    const withMotd = alice.received.filter(
      (el) => fromServer(el) && MOTD.some((l) => bodyOf(el).includes(l)),
    );
    expect(withMotd, alice.dump()).toHaveLength(1);
  });

  it("answers a WHOIS typed to the server JID with one readable message", async () => {
    await alice.send(
      xml("message", { to: serverJid, type: "chat", id: "c-whois" }, xml("body", {}, `/whois ${bobNick}`)),
    );
    const reply = await alice.waitFor(
      (el) => fromServer(el) && bodyOf(el).includes(`${bobNick} is `),
      20_000,
    );
    const body = bodyOf(reply);
    // RPL_WHOISUSER and RPL_WHOISSERVER in words, in one message; no protocol (numerics, our nick) shown.
    expect(body).toMatch(new RegExp(`^${bobNick} is ~?${bobNick}@\\S+ \\(raw test client\\)$`, "m"));
    expect(body).toContain(`${bobNick} is on ${SERVER}`);
    expect(body).not.toMatch(/\b31[1-9]\b/);
    expect(body).not.toContain("End of");
    await alice.sync();
    expect(alice.received.filter((el) => fromServer(el) && bodyOf(el).includes(bobNick))).toHaveLength(1);
  });

  it("refuses PRIVMSG and a line with a line break, and nothing reaches the IRC server", async () => {
    await bob.join(`#cx${slot}`);
    const refused = async (id: string, body: string) => {
      await alice.send(xml("message", { to: serverJid, type: "chat", id }, xml("body", {}, body)));
      return alice.waitFor((el) => el.attrs.id === id && el.attrs.type === "error");
    };
    const privmsg = errorOf(await refused("c-privmsg", `PRIVMSG #cx${slot} :hi from the console`));
    expect(privmsg.condition).toBe("not-allowed");
    expect(privmsg.text).toMatch(/room/);
    const lf = errorOf(await refused("c-lf", `WHOIS ${bobNick}\nPRIVMSG ${bobNick} :injected`));
    expect(lf.condition).toBe("bad-request");
    expect(lf.text).toMatch(/line break/i);
    const notice = errorOf(await refused("c-notice", `NOTICE ${bobNick} :noticed`));
    expect(notice.condition).toBe("not-allowed");
    // A message on the same connection after them: had they been sent, they would have arrived first.
    await alice.send(
      xml(
        "message",
        { to: `${bobNick.toLowerCase()}%${SERVER}@${domain}`, type: "chat", id: "c-marker" },
        xml("body", {}, "marker"),
      ),
    );
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${bobNick} :marker`));
    expect(bob.lines.filter((l) => /hi from the console|injected|noticed/.test(l))).toEqual([]);
  });

  it("says what the server JID offers, and a room JID still answers disco#info", async () => {
    const info = await alice.iq("get", serverJid, xml("query", { xmlns: DISCO_INFO }));
    const query = info.getChild("query", DISCO_INFO);
    expect(query?.getChild("identity")?.attrs).toMatchObject({ category: "conference", type: "irc" });
    const features = (query?.getChildren("feature") ?? []).map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([DISCO_ITEMS, RSM, "http://jabber.org/protocol/muc"]));
    // A channel found in the list is a room: a client joins it rather than opening a chat.
    const room = await alice.iq("get", roomJid(`#cx${slot}`), xml("query", { xmlns: DISCO_INFO }));
    const roomQuery = room.getChild("query", DISCO_INFO);
    expect(roomQuery?.getChild("identity")?.attrs).toMatchObject({ category: "conference", type: "irc" });
    expect((roomQuery?.getChildren("feature") ?? []).map((f) => f.attrs.var)).toContain(
      "http://jabber.org/protocol/muc",
    );
  });

  it("lists the network's channels with user counts and topics, a page at a time, from a copy", async () => {
    // #alpha: bob and carol, a coloured topic; #beta: bob; #gamma: carol, no topic.
    for (const [who, channel] of [
      [bob, "alpha"],
      [carol, "alpha"],
      [bob, "beta"],
      [carol, "gamma"],
    ] as const) {
      await who.join(`#${channel}${slot}`);
    }
    bob.send(`TOPIC #alpha${slot} :\x0304Welcome\x03 to alpha`);
    await bob.waitFor((l) => l.includes(` TOPIC #alpha${slot}`));

    const before = await listed("irc");
    const all = items(await discoItems());
    expect(await listed("irc")).toBe(before + 1);
    expect(all).toEqual(
      expect.arrayContaining([
        { jid: roomJid(`#alpha${slot}`), name: `#alpha${slot} (2 users): Welcome to alpha` },
        { jid: roomJid(`#beta${slot}`), name: `#beta${slot} (1 user)` },
        { jid: roomJid(`#gamma${slot}`), name: `#gamma${slot} (1 user)` },
        { jid: roomJid(`#cx${slot}`), name: `#cx${slot} (1 user)` },
      ]),
    );

    // XEP-0059: two items, then the rest after the last one.
    const first = await discoItems(xml("set", { xmlns: RSM }, xml("max", {}, "2")));
    const firstItems = items(first);
    expect(firstItems).toHaveLength(2);
    const set = rsmSet(first);
    expect(Number(set?.getChildText("count"))).toBe(all.length);
    expect(set?.getChild("first")?.attrs.index).toBe("0");
    expect(set?.getChildText("last")).toBe(firstItems[1]?.jid);
    const second = await discoItems(
      xml("set", { xmlns: RSM }, xml("max", {}, "10"), xml("after", {}, set?.getChildText("last") ?? "")),
    );
    expect([...firstItems, ...items(second)]).toEqual(all);
    expect(rsmSet(second)?.getChild("first")?.attrs.index).toBe("2");

    // A channel made now is not listed: the list comes from the copy, not from another LIST.
    await carol.join(`#delta${slot}`);
    expect(items(await discoItems()).map((i) => i.jid)).not.toContain(roomJid(`#delta${slot}`));
    expect(await listed("irc")).toBe(before + 1);
    // Without the copy, the next query asks the server again and sees it: once for two users asking at once
    // (neither connected yet: the second asks while the first one's connection is being opened).
    const redis = new Redis(bed.redis!.url);
    const dave = await TestUser.login(peer, `dave${slot}-console`);
    const erin = await TestUser.login(peer, `erin${slot}-console`);
    try {
      expect(await redis.del(`${gw.keyPrefix}a:{irc}:channel-list:${SERVER}`)).toBe(1);
      const query = () => xml("query", { xmlns: DISCO_ITEMS });
      const [forDave, forErin] = await Promise.all([
        dave.iq("get", serverJid, query(), 30_000),
        erin.iq("get", serverJid, query(), 30_000),
      ]);
      expect(items(forDave).map((i) => i.jid)).toContain(roomJid(`#delta${slot}`));
      expect(items(forErin)).toEqual(items(forDave));
      expect(await listed("irc")).toBe(before + 2);
    } finally {
      redis.disconnect();
      await dave.stop();
      await erin.stop();
    }
  });

  it("says so when a network refuses LIST or stays silent, and shows its notices", async () => {
    const busyJid = `busy.localhost@${domain}`;
    const refused = await alice.iq("get", busyJid, xml("query", { xmlns: DISCO_ITEMS }), 30_000);
    const why = errorOf(refused);
    expect(why.condition).toBe("service-unavailable");
    expect(why.text).toMatch(/busy\.localhost refused to list its channels: Server load is temporarily/);
    // The notice sent while connecting, at the head of the welcome; a later one on its own.
    const early = await alice.waitFor(
      (el) => el.attrs.from === busyJid && bodyOf(el).includes("Checking you out"),
    );
    expect(bodyOf(early)).toBe("Notices from busy.localhost:\n*** Checking you out");
    await alice.waitFor(
      (el) => el.attrs.from === busyJid && bodyOf(el) === "busy.localhost: Maintenance at noon",
    );

    const silent = await alice.iq(
      "get",
      `mute.localhost@${domain}`,
      xml("query", { xmlns: DISCO_ITEMS }),
      30_000,
    );
    expect(errorOf(silent)).toMatchObject({
      condition: "remote-server-timeout",
      text: "mute.localhost did not send its channel list: no answer to LIST within 3 seconds.",
    });
  });

  it("reads InspIRCd's answers too: its channel list and a WHOIS", async () => {
    const dora = await RawIrc.connect(insp.port, `Dora${slot}`);
    try {
      await dora.join(`#insp${slot}`);
      dora.send(`TOPIC #insp${slot} :Hello from \x02InspIRCd\x02`);
      await dora.waitFor((l) => l.includes(" TOPIC "));
      const inspJid = `${insp.serverName}@${domain}`;
      const answer = await alice.iq("get", inspJid, xml("query", { xmlns: DISCO_ITEMS }), 30_000);
      expect(items(answer)).toContainEqual({
        jid: `#insp${slot}%${insp.serverName}@${domain}`,
        name: `#insp${slot} (1 user): Hello from *InspIRCd*`,
      });
      await alice.send(
        xml("message", { to: inspJid, type: "chat", id: "c-insp" }, xml("body", {}, `WHOIS Dora${slot}`)),
      );
      const reply = await alice.waitFor(
        (el) => el.attrs.from === inspJid && bodyOf(el).includes(`Dora${slot} is on `),
        20_000,
      );
      expect(bodyOf(reply)).toMatch(new RegExp(`^Dora${slot} is \\S+@\\S+ \\(raw test client\\)$`, "m"));
      expect(bodyOf(reply)).toContain(`Dora${slot} is in @#insp${slot}`);
    } finally {
      dora.close();
    }
  });
});
