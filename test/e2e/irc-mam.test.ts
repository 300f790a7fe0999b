/**
 * IRC channel history as XMPP users see it: the archive fed by the gateway's IRC connections, queried with
 * XEP-0313 (MAM) on the room JID the way Conversations catches up after being away, XEP-0045 history on
 * join, the retention by count, the per-channel opt-out, and a stranger refused.
 *
 * alice and carol are bridged users (each with an IRC connection to the bed's ngircd); bob is a raw IRC client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInspircd } from "../bed/inspircd.js";
import type { IrcPeer } from "../bed/index.js";
import { slotDomain } from "../slots.js";
import { errorOf, runCommand, statusCodes, TestUser, xml, type Element } from "../support/client.js";
import { plainIrc, sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const MAM = "urn:xmpp:mam:2";
const RSM = "http://jabber.org/protocol/rsm";
const FORWARD = "urn:xmpp:forward:0";
const SID = "urn:xmpp:sid:0";
const DELAY = "urn:xmpp:delay";
const DISCO_INFO = "http://jabber.org/protocol/disco#info";
const COMMANDS = "http://jabber.org/protocol/commands";

/** What one MAM query returned: the forwarded messages in order, and the `<fin/>`. */
interface MamAnswer {
  iq: Element;
  results: { id: string; message: Element; stamp: string | undefined }[];
  fin: Element | undefined;
}

/** A MAM query on `room` with the form `fields` and the RSM `set` children. */
async function mam(
  user: TestUser,
  room: string,
  fields: Record<string, string>,
  set: Element[] = [],
): Promise<MamAnswer> {
  const queryid = `q-${Math.random().toString(36).slice(2)}`;
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "FORM_TYPE", type: "hidden" }, xml("value", {}, MAM)),
    ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
  );
  const before = user.received.length;
  const iq = await user.iq(
    "set",
    room,
    xml("query", { xmlns: MAM, queryid }, form, ...(set.length ? [xml("set", { xmlns: RSM }, ...set)] : [])),
  );
  const results = user.received
    .slice(before)
    .filter((el) => el.name === "message" && el.getChild("result", MAM)?.attrs.queryid === queryid)
    .map((el) => {
      const result = el.getChild("result", MAM)!;
      const forwarded = result.getChild("forwarded", FORWARD)!;
      return {
        id: result.attrs.id as string,
        message: forwarded.getChild("message")!,
        stamp: forwarded.getChild("delay", DELAY)?.attrs.stamp,
      };
    });
  return { iq, results, fin: iq.getChild("fin", MAM) };
}

/** How long the channels of age.localhost keep a line. */
const AGE_SECONDS = 2;

const textOf = (m: Element): string => m.getChildText("body") ?? `subject: ${m.getChildText("subject")}`;
const rsm = (fin: Element | undefined, name: string) => fin?.getChild("set", RSM)?.getChildText(name);

describe("IRC channel history: archive, MAM, history on join", () => {
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
  let carolNick: string;

  const join = async (user: TestUser, roomJid: string, nick: string, history?: Record<string, string>) => {
    const self = await user.joinRoom(`${roomJid}/${nick}`, { history });
    // The join ends with the subject (XEP-0045 §7.2.15).
    return user.waitFor(
      (el) =>
        el.name === "message" &&
        el.attrs.from === roomJid &&
        el.getChild("subject") !== undefined &&
        el.getChild("delay", DELAY) === undefined &&
        user.received.indexOf(el) > user.received.indexOf(self),
      20_000,
    );
  };

  /** The live groupchat message `user` got from bob with this body (or subject). */
  const live = (user: TestUser, roomJid: string, text: string) =>
    user.waitFor(
      (el) =>
        el.name === "message" &&
        el.attrs.from === `${roomJid}/${bobNick}` &&
        el.getChild("delay", DELAY) === undefined &&
        (el.getChildText("body") === text || el.getChildText("subject") === text),
      20_000,
    );

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    channel = `#mam${slot}`;
    bobNick = `Bob${slot}`;
    aliceNick = `alice${slot}`;
    carolNick = `carol${slot}`;
    room = `${channel}%${ircd.serverName}@${domain}`;
    gw = await startIrcGateway(bed, slot, {
      servers: { allow: [ircd.serverName, "trim.localhost", "age.localhost"] },
      tls: false,
      addresses: {
        [ircd.serverName]: { host: "127.0.0.1", port: ircd.port },
        // The same ngircd under another name, whose channels keep 3 lines.
        "trim.localhost": { host: "127.0.0.1", port: ircd.port, archive: { maxLines: 3 } },
        // ... and under a third, whose lines are kept AGE_SECONDS.
        "age.localhost": {
          host: "127.0.0.1",
          port: ircd.port,
          archive: { maxDays: AGE_SECONDS / 86_400 },
        },
      },
      graceSeconds: 30,
      lineDelayMs: 0,
    });
    bob = await RawIrc.connect(ircd.port, bobNick);
    await bob.join(channel);
    alice = await TestUser.login(peer, `alice-mam-${slot}`);
    carol = await TestUser.login(peer, `carol-mam-${slot}`);
  });

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await carol?.stop();
    await gw?.stop();
  });

  const ids: Record<string, string> = {};

  it("keeps a line heard by two bridged users once, with one stanza-id for both", async () => {
    await join(alice, room, aliceNick);
    await join(carol, room, carolNick);
    bob.send(`PRIVMSG ${channel} :both of you hear this`);
    const [a, c] = await Promise.all([
      live(alice, room, "both of you hear this"),
      live(carol, room, "both of you hear this"),
    ]);
    const sidA = a.getChild("stanza-id", SID)?.attrs;
    const sidC = c.getChild("stanza-id", SID)?.attrs;
    expect(sidA?.by).toBe(room);
    expect(sidA?.id).toBe(sidC?.id);
    const all = await mam(carol, room, {});
    const copies = all.results.filter((r) => r.message.getChildText("body") === "both of you hear this");
    expect(
      copies.map((r) => r.id),
      carol.dump(),
    ).toEqual([sidA?.id]);
    expect(copies[0]?.message.attrs.from).toBe(`${room}/${bobNick}`);
    ids.both = sidA!.id as string;
  });

  it("catches up like Conversations: after leaving, MAM with start returns exactly the missed lines with the live ids", async () => {
    const self = `${room}/${aliceNick}`;
    await alice.send(xml("presence", { to: self, type: "unavailable" }));
    await alice.waitFor((el) => el.attrs.type === "unavailable" && el.attrs.from === self);
    // As Conversations does: start just after the last line the client has (its archive id is ms-seq).
    const lastSeen = ids.both!;
    const leftAt = new Date(Number(lastSeen.split("-")[0]) + 1).toISOString();
    bob.send(`PRIVMSG ${channel} :you missed this`);
    bob.send(`PRIVMSG ${channel} :\x01ACTION waves\x01`);
    bob.send(`NOTICE ${channel} :\x02build\x02 is green`);
    bob.send(`TOPIC ${channel} :a new topic`);
    const seen = await Promise.all([
      live(carol, room, "you missed this"),
      live(carol, room, "/me waves"),
      live(carol, room, "*build* is green"),
      live(carol, room, "a new topic"),
    ]);
    const liveIds = seen.map((el) => el.getChild("stanza-id", SID)?.attrs.id as string);
    expect(new Set(liveIds).size).toBe(4);

    const caught = await mam(alice, room, { start: leftAt });
    expect(caught.iq.attrs.type, caught.iq.toString()).toBe("result");
    expect(caught.results.map((r) => textOf(r.message))).toEqual([
      "you missed this",
      "/me waves",
      "*build* is green",
      "subject: a new topic",
    ]);
    expect(caught.results.map((r) => r.id)).toEqual(liveIds);
    // The forwarded message: from the occupant, with its stanza-id, and the time it was said.
    const first = caught.results[0]!;
    expect(first.message.attrs).toMatchObject({ type: "groupchat", from: `${room}/${bobNick}` });
    expect(first.message.getChild("stanza-id", SID)?.attrs).toMatchObject({ id: liveIds[0], by: room });
    expect(Date.parse(first.stamp ?? "")).toBeGreaterThanOrEqual(Date.parse(leftAt));
    expect(caught.fin?.attrs.complete).toBe("true");
    expect(rsm(caught.fin, "first")).toBe(liveIds[0]);
    expect(rsm(caught.fin, "last")).toBe(liveIds[3]);
    ids.missed = liveIds[0]!;
    ids.topic = liveIds[3]!;
  });

  it("pages with RSM: max, after the last id, and the last page with an empty <before/>", async () => {
    const all = await mam(alice, room, {});
    const everything = all.results.map((r) => r.id);
    expect(everything.length).toBeGreaterThanOrEqual(5);

    const pages: string[][] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await mam(alice, room, {}, [
        xml("max", {}, "2"),
        ...(after ? [xml("after", {}, after)] : []),
      ]);
      pages.push(page.results.map((r) => r.id));
      expect(rsm(page.fin, "count")).toBe(String(everything.length));
      if (page.fin?.attrs.complete === "true") break;
      expect(page.results).toHaveLength(2);
      after = rsm(page.fin, "last") ?? undefined;
    }
    expect(pages.flat()).toEqual(everything);
    expect(pages.length).toBe(Math.ceil(everything.length / 2));

    const last = await mam(alice, room, {}, [xml("max", {}, "2"), xml("before")]);
    expect(last.results.map((r) => r.id)).toEqual(everything.slice(-2));
    const previous = await mam(alice, room, {}, [xml("max", {}, "2"), xml("before", {}, everything.at(-2))]);
    expect(previous.results.map((r) => r.id)).toEqual(everything.slice(-4, -2));

    const onlyBob = await mam(alice, room, { with: `${room}/${bobNick}` }, [xml("max", {}, "1")]);
    expect(onlyBob.results[0]?.message.attrs.from).toBe(`${room}/${bobNick}`);
    expect(onlyBob.fin?.attrs.complete).toBeUndefined();
  });

  it("answers bad queries with a typed error and a text", async () => {
    const unknownId = await mam(alice, room, {}, [xml("after", {}, "1-1")]);
    expect(errorOf(unknownId.iq).condition).toBe("item-not-found");
    const badDate = await mam(alice, room, { start: "yesterday" });
    expect(errorOf(badDate.iq)).toMatchObject({ condition: "bad-request" });
    expect(errorOf(badDate.iq).text).toMatch(/start/);
    const form = await alice.iq("get", room, xml("query", { xmlns: MAM }));
    const fields = form
      .getChild("query", MAM)
      ?.getChild("x", "jabber:x:data")
      ?.getChildren("field")
      .map((f) => f.attrs.var);
    expect(fields).toEqual(expect.arrayContaining(["FORM_TYPE", "start", "end", "with"]));
    const info = await alice.iq("get", room, xml("query", { xmlns: DISCO_INFO }));
    const features = info
      .getChild("query", DISCO_INFO)
      ?.getChildren("feature")
      .map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([MAM, MUC]));
  });

  it("refuses a stranger's query: only users who joined the channel through the gateway read it", async () => {
    const dave = await TestUser.login(peer, `dave-mam-${slot}`);
    try {
      const refused = await mam(dave, room, {});
      expect(errorOf(refused.iq).condition).toBe("forbidden");
      expect(errorOf(refused.iq).text).toMatch(/join/);
      expect(refused.results).toEqual([]);
    } finally {
      await dave.stop();
    }
  });

  it("sends history on join: maxstanzas lines with delays and the archive's ids, between the occupants and the subject", async () => {
    const before = alice.received.length;
    const subject = await join(alice, room, aliceNick, { maxstanzas: "2" });
    const got = alice.received.slice(before);
    const history = got.filter((el) => el.name === "message" && el.getChild("delay", DELAY) !== undefined);
    expect(history.map((el) => textOf(el))).toEqual(["*build* is green", "subject: a new topic"]);
    expect(history.map((el) => el.getChild("stanza-id", SID)?.attrs.id)).toEqual([
      expect.any(String),
      ids.topic,
    ]);
    const self = got.find((el) => el.name === "presence" && statusCodes(el).includes(110))!;
    expect(got.indexOf(history[0]!)).toBeGreaterThan(got.indexOf(self));
    expect(got.indexOf(subject)).toBeGreaterThan(got.indexOf(history[1]!));
    expect(subject.getChildText("subject")).toBe("a new topic");
  });

  it("sends the default history (20 lines at most) without <history/>, and none with maxstanzas=0", async () => {
    const dave = await TestUser.login(peer, `erin-mam-${slot}`);
    try {
      // More lines than the default sends.
      for (let n = 1; n <= 21; n++) bob.send(`PRIVMSG ${channel} :filler ${n}`);
      await live(carol, room, "filler 21");
      const before = dave.received.length;
      await join(dave, room, `erin${slot}`);
      const history = dave.received
        .slice(before)
        .filter((el) => el.name === "message" && el.getChild("delay", DELAY) !== undefined);
      const archived = await mam(alice, room, {});
      expect(history).toHaveLength(20);
      expect(history.at(-1)?.getChildText("body")).toBe("filler 21");
      expect(history.map((el) => el.getChild("stanza-id", SID)?.attrs.id)).toEqual(
        archived.results.slice(-20).map((r) => r.id),
      );
      const left = `${room}/erin${slot}`;
      await dave.send(xml("presence", { to: left, type: "unavailable" }));
      await dave.waitFor((el) => el.attrs.type === "unavailable" && el.attrs.from === left);
      const again = dave.received.length;
      await join(dave, room, `erin${slot}`, { maxstanzas: "0" });
      expect(
        dave.received.slice(again).filter((el) => el.name === "message" && el.getChild("delay", DELAY)),
      ).toEqual([]);
    } finally {
      await dave.stop();
    }
  });

  it("archives the user's own lines: once when another bridged user hears them, and when alone", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "own-1" }, xml("body", {}, "said from XMPP")),
    );
    const reflected = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "own-1", 20_000);
    const heard = await carol.waitFor(
      (el) => el.name === "message" && el.getChildText("body") === "said from XMPP",
      20_000,
    );
    const sid = heard.getChild("stanza-id", SID)?.attrs;
    expect(sid?.by).toBe(room);
    expect(reflected.getChild("stanza-id", SID)?.attrs.id).toBe(sid?.id);
    const all = await mam(carol, room, { with: `${room}/${aliceNick}` });
    expect(all.results.map((r) => r.id)).toEqual([sid?.id]);

    const alone = `#alone${slot}%${ircd.serverName}@${domain}`;
    await join(carol, alone, carolNick);
    await carol.send(
      xml("message", { to: alone, type: "groupchat", id: "own-2" }, xml("body", {}, "/me is alone here")),
    );
    const mine = await carol.waitFor((el) => el.name === "message" && el.attrs.id === "own-2", 20_000);
    const kept = await mam(carol, alone, {});
    expect(kept.results.map((r) => textOf(r.message))).toEqual(["/me is alone here"]);
    expect(kept.results[0]?.id).toBe(mine.getChild("stanza-id", SID)?.attrs.id);
  });

  it("keeps only the configured number of lines of a channel", async () => {
    const trimChannel = `#trim${slot}`;
    const trimRoom = `${trimChannel}%trim.localhost@${domain}`;
    await bob.join(trimChannel);
    await join(carol, trimRoom, `carol${slot}t`);
    for (const n of [1, 2, 3, 4, 5]) bob.send(`PRIVMSG ${trimChannel} :line ${n}`);
    await live(carol, trimRoom, "line 5");
    const kept = await mam(carol, trimRoom, {});
    expect(kept.results.map((r) => textOf(r.message))).toEqual(["line 3", "line 4", "line 5"]);
  });

  it("serves and keeps a line no longer than the configured age", async () => {
    const ageChannel = `#age${slot}`;
    const ageRoom = `${ageChannel}%age.localhost@${domain}`;
    await bob.join(ageChannel);
    await join(carol, ageRoom, `carol${slot}a`);
    bob.send(`PRIVMSG ${ageChannel} :soon gone`);
    await live(carol, ageRoom, "soon gone");
    expect((await mam(carol, ageRoom, {})).results.map((r) => textOf(r.message))).toEqual(["soon gone"]);
    // The channel stays quiet: the query itself no longer finds the line once it is older than the age.
    const deadline = Date.now() + 30_000;
    for (let left = ["soon gone"]; left.length > 0;) {
      if (Date.now() > deadline) throw new Error(`still archived: ${left.join(", ")}`);
      await new Promise((r) => setTimeout(r, 250));
      left = (await mam(carol, ageRoom, {})).results.map((r) => textOf(r.message));
    }
    bob.send(`PRIVMSG ${ageChannel} :fresh`);
    await live(carol, ageRoom, "fresh");
    expect((await mam(carol, ageRoom, {})).results.map((r) => textOf(r.message))).toEqual(["fresh"]);
  });

  it("stops archiving a channel its operator opts out, and refuses the opt-out to others", async () => {
    const optChannel = `#optout${slot}`;
    const optRoom = `${optChannel}%${ircd.serverName}@${domain}`;
    // carol joins first: ngircd makes the first user of a channel its operator.
    await join(carol, optRoom, carolNick);
    await join(alice, optRoom, aliceNick);
    await bob.join(optChannel);
    bob.send(`PRIVMSG ${optChannel} :kept`);
    await live(carol, optRoom, "kept");
    expect((await mam(carol, optRoom, {})).results.map((r) => textOf(r.message))).toEqual(["kept"]);

    const roomId = optRoom.slice(0, optRoom.lastIndexOf("@"));
    const denied = await runCommand(alice, optRoom, "irc-channel-archive", { room: roomId, archive: "off" });
    expect(errorOf(denied).condition).toBe("forbidden");
    // On the room JID, the form names the room already.
    const form = await carol.iq(
      "set",
      optRoom,
      xml("command", { xmlns: COMMANDS, node: "irc-channel-archive", action: "execute" }),
    );
    const roomField = form
      .getChild("command", COMMANDS)
      ?.getChild("x", "jabber:x:data")
      ?.getChildren("field")
      .find((f) => f.attrs.var === "room");
    expect(roomField?.getChildText("value")).toBe(roomId);
    const done = await runCommand(carol, optRoom, "irc-channel-archive", {
      room: roomField?.getChildText("value") ?? "",
      archive: "off",
    });
    expect(done.attrs.type, done.toString()).toBe("result");

    bob.send(`PRIVMSG ${optChannel} :not kept`);
    await live(carol, optRoom, "not kept");
    const after = await mam(carol, optRoom, {});
    expect(errorOf(after.iq).condition).toBe("item-not-found");
    const info = await carol.iq("get", optRoom, xml("query", { xmlns: DISCO_INFO }));
    const features = info
      .getChild("query", DISCO_INFO)
      ?.getChildren("feature")
      .map((f) => f.attrs.var);
    expect(features).not.toContain(MAM);
  });
});

describe("IRC channel history with IRCv3 (msgid, echo-message)", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let ircd: IrcPeer;
  let ircdDir: string | undefined;
  let gw: TestGateway;
  let alice: TestUser;
  let carol: TestUser;
  let bob: RawIrc;
  let room: string;
  const channel = "#v3mam";

  beforeAll(async () => {
    ircdDir = await mkdtemp(path.join(tmpdir(), "inspircd-mam-"));
    ircd = await startInspircd({ dir: ircdDir });
    const slot = await takeSlot(bed);
    room = `${channel}%${ircd.serverName}@${slotDomain(slot, "irc")}`;
    gw = await startIrcGateway(bed, slot, plainIrc({ [ircd.serverName]: ircd.port }));
    bob = await RawIrc.connect(ircd.port, "bob");
    await bob.join(channel);
    alice = await TestUser.login(peer, `alice-v3mam-${slot}`);
    carol = await TestUser.login(peer, `carol-v3mam-${slot}`);
  });

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await carol?.stop();
    await gw?.stop();
    await ircd?.stop();
    if (ircdDir) await rm(ircdDir, { recursive: true, force: true });
  });

  const joinRoom = (user: TestUser, nick: string) => user.joinRoom(`${room}/${nick}`);

  it("keeps a line with a msgid once for two bridged users, and the user's own echoed line once, its reflection with that archive id", async () => {
    await joinRoom(alice, "alice");
    await joinRoom(carol, "carol");
    bob.send(`PRIVMSG ${channel} :tagged line`);
    const byBody = (user: TestUser, body: string) =>
      user.waitFor((el) => el.name === "message" && el.getChildText("body") === body, 20_000);
    const [a, c] = await Promise.all([byBody(alice, "tagged line"), byBody(carol, "tagged line")]);
    // The message id comes from the msgid tag; the stanza-id is the archive's, the same for both.
    expect(a.attrs.id).toMatch(/^irc-/);
    expect(a.attrs.id).toBe(c.attrs.id);
    expect(a.getChild("stanza-id", SID)?.attrs).toEqual(c.getChild("stanza-id", SID)?.attrs);

    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "v3-own" }, xml("body", {}, "echoed line")),
    );
    const reflected = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "v3-own", 20_000);
    const heard = await byBody(carol, "echoed line");
    // The reflection came after the server's echo and carries that line's archive id, as carol's copy does.
    expect(reflected.getChild("stanza-id", SID)?.attrs).toEqual(heard.getChild("stanza-id", SID)?.attrs);
    const all = await mam(carol, room, {});
    expect(all.results.map((r) => textOf(r.message))).toEqual(["tagged line", "echoed line"]);
    expect(all.results.map((r) => r.id)).toEqual([
      a.getChild("stanza-id", SID)?.attrs.id,
      heard.getChild("stanza-id", SID)?.attrs.id,
    ]);
  });
});
