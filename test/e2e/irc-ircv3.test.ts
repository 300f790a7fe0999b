/**
 * IRCv3 through the gateway, against an InspIRCd that offers it (the shared ngircd does not): the IRC
 * msgid becomes the stanza id and server-time the XEP-0203 delay, the user's own room message is reflected
 * once the server echoed it (echo-message), multi-prefix occupants, and away-notify as occupant presence.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startInspircd } from "../bed/inspircd.js";
import type { IrcPeer } from "../bed/index.js";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml, type Element } from "../support/client.js";
import { plainIrc, sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC_USER = "http://jabber.org/protocol/muc#user";
const DELAY = "urn:xmpp:delay";

const itemOf = (el: Element) => el.getChild("x", MUC_USER)?.getChild("item")?.attrs ?? {};

describe("IRCv3 through the gateway", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let ircd: IrcPeer;
  let ircdDir: string | undefined;
  let gw: TestGateway;
  let alice: TestUser;
  let bob: RawIrc;
  let room: string;
  const channel = "#v3";

  beforeAll(async () => {
    ircdDir = await mkdtemp(path.join(tmpdir(), "inspircd-"));
    ircd = await startInspircd({ dir: ircdDir });
    const slot = await takeSlot(bed);
    const domain = slotDomain(slot, "irc");
    room = `${channel}%${ircd.serverName}@${domain}`;
    gw = await startIrcGateway(bed, slot, plainIrc({ [ircd.serverName]: ircd.port }));
    bob = await RawIrc.connect(ircd.port, "bob");
    bob.send("CAP REQ :message-tags echo-message");
    await bob.waitFor((l) => l.includes(" CAP bob ACK "));
    await bob.join(channel);
    bob.send(`MODE ${channel} +mv bob`);
    await bob.waitFor((l) => l.includes(`MODE ${channel} +mv`));
    alice = await TestUser.login(peer, `alice-v3-${slot}`);
  });

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await gw?.stop();
    await ircd?.stop();
    if (ircdDir) await rm(ircdDir, { recursive: true, force: true });
  });

  it("knows every prefix of an occupant (multi-prefix): op and voice, then voice only, in a +m channel", async () => {
    await alice.joinRoom(`${room}/alice`);
    // +m (learnt from the channel's modes after the join): the user, without voice, is a visitor.
    await alice.waitFor((el) => el.attrs.from === `${room}/alice` && itemOf(el).role === "visitor");
    const bobHere = alice.received.find((el) => el.name === "presence" && el.attrs.from === `${room}/bob`);
    expect(bobHere && itemOf(bobHere)).toMatchObject({ role: "moderator", affiliation: "admin" });
    const carl = await RawIrc.connect(ircd.port, "carl");
    try {
      carl.send(`JOIN ${channel}`);
      await alice.waitFor((el) => el.attrs.from === `${room}/carl` && itemOf(el).role === "visitor");
      bob.send(`MODE ${channel} +ov carl carl`);
      await alice.waitFor((el) => el.attrs.from === `${room}/carl` && itemOf(el).role === "moderator");
      bob.send(`MODE ${channel} -o carl`);
      // Still voiced, which only multi-prefix NAMES and modes tell: a participant, not a visitor.
      const after = await alice.waitFor(
        (el) => el.attrs.from === `${room}/carl` && itemOf(el).role === "participant",
      );
      expect(itemOf(after).affiliation).toBe("none");
    } finally {
      carl.close();
    }
  });

  it("uses the IRC msgid as the stanza id and server-time as the delay", async () => {
    bob.send(`PRIVMSG ${channel} :tagged hello`);
    const echo = await bob.waitFor((l) => l.startsWith("@") && l.endsWith("PRIVMSG #v3 :tagged hello"));
    const msgid = /(?:^@|;)msgid=([^; ]+)/.exec(echo)?.[1];
    expect(msgid, echo).toBeTruthy();
    const got = await alice.waitFor((el) => el.getChildText("body") === "tagged hello");
    expect(got.attrs.id).toBe(`irc-${msgid}`);
    expect(got.getChild("delay", DELAY)?.attrs.stamp).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("turns a message the server refuses (a visitor in a +m channel) into an error, not a reflection", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "v3-muted" }, xml("body", {}, "can I speak?")),
    );
    const refused = await alice.waitFor((el) => el.attrs.id === "v3-muted");
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).condition).toBe("forbidden");
    expect(errorOf(refused).text).toContain(channel);
    bob.send(`MODE ${channel} -m`);
    await bob.waitFor((l) => / MODE #v3 :?-m/.test(l));
  });

  it("reflects the user's own message with its id once the server echoed it, and sends it once", async () => {
    await alice.send(
      xml("message", { to: room, type: "groupchat", id: "v3-own" }, xml("body", {}, "one\ntwo")),
    );
    const reflected = await alice.waitFor((el) => el.name === "message" && el.attrs.id === "v3-own");
    expect(reflected.attrs.from).toBe(`${room}/alice`);
    expect(reflected.getChildText("body")).toBe("one\ntwo");
    await bob.waitFor((l) => l.endsWith(`PRIVMSG ${channel} :two`));
    expect(alice.received.filter((el) => el.attrs.id === "v3-own")).toHaveLength(1);
    // The server's echoes are not shown a second time as messages from the user.
    expect(alice.received.filter((el) => el.name === "message" && el.getChildText("body") === "one")).toEqual(
      [],
    );
  });

  it("shows an occupant going away and coming back (away-notify)", async () => {
    bob.send("AWAY :lunch");
    const away = await alice.waitFor(
      (el) => el.name === "presence" && el.attrs.from === `${room}/bob` && el.getChildText("show") === "away",
    );
    expect(away.getChildText("status")).toBe("lunch");
    const mark = alice.received.length;
    bob.send("AWAY");
    await alice.waitFor(
      (el) =>
        alice.received.indexOf(el) >= mark &&
        el.name === "presence" &&
        el.attrs.from === `${room}/bob` &&
        el.getChild("show") === undefined,
    );
  });
});
