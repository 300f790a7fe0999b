/**
 * A busy IRC channel: an IRC user sends a burst of 2,000 lines into a channel where several XMPP users sit
 * through the gateway. Every line reaches every user, in order, and no user's IRC connection is closed
 * (the gateway once read a burst as one "oversized line" and dropped the connection with its lines).
 * The burst is larger than the backpressure bound (PAUSE_READING_ABOVE): reading from IRC pauses while the
 * store catches up, and nothing is lost for it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { TestUser, until } from "../support/client.js";
import { plainIrc, sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";
import { PAUSE_READING_ABOVE } from "../../adapters/irc/store-queue.js";

/** Lines in the burst, and XMPP users in the channel. */
const LINES = 2000;
const USERS = 3;
/** Filler that makes the lines long enough for the socket to hand over many of them per chunk. */
const FILLER = "lorem ipsum dolor sit amet ".repeat(8).trim();

describe("a burst of IRC lines into a channel of bridged users", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const ircd = bed.irc!;
  let gw: TestGateway;
  let users: TestUser[] = [];
  let bob: RawIrc;
  let channel: string;
  let room: string;
  let slot: number;

  beforeAll(async () => {
    slot = await takeSlot(bed);
    const domain = slotDomain(slot, "irc");
    channel = `#burst${slot}`;
    room = `${channel}%${ircd.serverName}@${domain}`;
    gw = await startIrcGateway(bed, slot, plainIrc({ [ircd.serverName]: ircd.port }));
    bob = await RawIrc.connect(ircd.port, `Burst${slot}`);
    await bob.join(channel);
    users = await Promise.all(
      Array.from({ length: USERS }, (_, i) => TestUser.login(peer, `burst${i}-${slot}`)),
    );
    await Promise.all(
      users.map(async (u, i) => {
        await u.joinRoom(`${room}/burst${i}x${slot}`, { timeoutMs: 30_000 });
      }),
    );
    for (let i = 0; i < USERS; i++)
      await bob.waitFor((l) => l.startsWith(`:burst${i}x${slot}!`) && l.includes(" JOIN "));
  }, 120_000);

  afterAll(async () => {
    bob?.close();
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
  });

  it("delivers every line to every user, in order, and closes no connection, pausing reading meanwhile", async () => {
    expect(LINES).toBeGreaterThan(PAUSE_READING_ABOVE);
    const sent = Array.from({ length: LINES }, (_, i) => `burst ${i} ${FILLER}`);
    for (const line of sent) bob.send(`PRIVMSG ${channel} :${line}`);
    const bodies = (u: TestUser) =>
      u.received
        .filter(
          (el) => el.name === "message" && el.attrs.type === "groupchat" && el.attrs.from?.startsWith(room),
        )
        .map((el) => el.getChildText("body") ?? "")
        .filter((b) => b.startsWith("burst "));
    await until(
      () => users.every((u) => bodies(u).length >= LINES),
      180_000,
      () => `lines received per user: ${users.map((u) => bodies(u).length).join(", ")} of ${LINES}`,
    );
    for (const u of users) expect(bodies(u)).toEqual(sent);
    // No connection was lost: the IRC side saw no QUIT, and no user was told of an outage or left a room.
    expect(bob.lines.filter((l) => l.includes(" QUIT "))).toEqual([]);
    for (const u of users)
      expect(u.received.filter((el) => el.name === "presence" && el.attrs.type === "unavailable")).toEqual(
        [],
      );
    // The burst went beyond the bound: reading from IRC paused (backpressure) rather than queueing it all.
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(Number(/^xgw_irc_read_pauses_total (\d+)$/m.exec(metrics)?.[1] ?? "0")).toBeGreaterThan(0);
  }, 240_000);
});
