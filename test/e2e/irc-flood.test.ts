/**
 * IRC flood control as admins set it: a user cannot switch it off or speed it up (a pause below the
 * server's floor is refused, and a low value already stored does not count), and a connection's queue is
 * bounded: a burst beyond it gets resource-constraint errors for the excess, every message is accounted for
 * (the order in which the core hands concurrent stanzas over is not what these tests look at).
 * Two server names lead to the bed's ngircd, each with its own floor.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml, until, runCommand } from "../support/client.js";
import { sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

/** slow.localhost: a floor no test outlives, so what left after the burst is exactly the burst. */
const SLOW = { lineDelayMs: 60_000, floodBurst: 3, maxQueuedLines: 20 };
/** paced.localhost: a short floor, so the queued lines go out during the test. */
const PACED = { lineDelayMs: 300, floodBurst: 2, maxQueuedLines: 20 };
/** grace.localhost: a floor longer than the grace period before an unused connection's QUIT. */
const GRACE = { lineDelayMs: 2500, floodBurst: 1 };
/** fast.localhost: no floor (a server that takes any rate), the smallest queue bound. */
const FAST = { lineDelayMs: 0, floodBurst: 1, maxQueuedLines: 20 };

describe("IRC flood control set by the admins", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const ircd = bed.irc!;
  let gw: TestGateway;
  let domain: string;
  let slot: number;
  let alice: TestUser;
  let bob: RawIrc;

  const settings = (fields: Record<string, string>) =>
    runCommand(alice, domain, "irc-server-settings", fields);

  /** Joins `channel` on `server` as `nick` (bob is in it already). */
  const join = async (channel: string, server: string, nick: string) => {
    await bob.join(channel);
    const room = `${channel}%${server}@${domain}`;
    await alice.joinRoom(`${room}/${nick}`, { timeoutMs: 30_000 });
    return room;
  };

  /** Sends `count` one-line room messages at once; ids and bodies `<tag>-<n>`. */
  const burst = async (room: string, tag: string, count: number) => {
    const ids = Array.from({ length: count }, (_, i) => `${tag}-${i}`);
    await Promise.all(
      ids.map((id) => alice.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, id)))),
    );
    return ids;
  };
  const arrived = (channel: string, tag: string) =>
    bob.lines
      .filter((l) => l.includes(`PRIVMSG ${channel} :${tag}-`))
      .map((l) => l.slice(l.lastIndexOf(":") + 1));
  const refused = (ids: string[]) =>
    alice.received.filter((el) => el.attrs.type === "error" && ids.includes(el.attrs.id ?? ""));

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    gw = await startIrcGateway(bed, slot, {
      servers: { allow: ["slow.localhost", "paced.localhost", "grace.localhost", "fast.localhost"] },
      graceSeconds: 1,
      tls: false,
      addresses: {
        "slow.localhost": { host: "127.0.0.1", port: ircd.port, ...SLOW },
        "paced.localhost": { host: "127.0.0.1", port: ircd.port, ...PACED },
        "grace.localhost": { host: "127.0.0.1", port: ircd.port, ...GRACE },
        "fast.localhost": { host: "127.0.0.1", port: ircd.port, ...FAST },
      },
    });
    bob = await RawIrc.connect(ircd.port, `Flood${slot}`);
    alice = await TestUser.login(peer, `alice-flood-${slot}`);
  }, 60_000);

  afterAll(async () => {
    bob?.close();
    await alice?.stop();
    await gw?.stop();
  });

  it("refuses a pause below the server's floor, with a text saying the floor", async () => {
    const answer = await settings({ server: "slow.localhost", lineDelayMs: "0" });
    expect(errorOf(answer).condition).toBe("not-acceptable");
    expect(errorOf(answer).text).toContain(`at least ${SLOW.lineDelayMs} ms`);
    const longer = await settings({ server: "paced.localhost", lineDelayMs: String(PACED.lineDelayMs + 1) });
    expect(longer.attrs.type, longer.toString()).toBe("result");
  });

  it("a pause of 0 already stored does not speed up the connection: the burst leaves, the rest waits or is refused", async () => {
    // As an older release stored it, or a value from before the admins raised the floor.
    const redis = new Redis(bed.redis!.url);
    try {
      await redis.hset(
        `${gw.keyPrefix}settings:irc`,
        alice.bare,
        JSON.stringify({ v: 1, values: { "slow.localhost/lineDelayMs": "0" } }),
      );
    } finally {
      redis.disconnect();
    }
    const channel = `#slow${slot}`;
    const room = await join(channel, "slow.localhost", `slow${slot}`);
    const ids = await burst(room, "s", 30);
    // 30 one-line messages: what is left of the burst (the JOIN took some) leaves at once, at most 20 wait
    // (the queue's bound), the rest is refused; nothing more leaves before the floor's minute is over.
    await until(
      () => refused(ids).length >= ids.length - SLOW.maxQueuedLines - SLOW.floodBurst,
      30_000,
      () => `refused: ${refused(ids).length}, arrived: ${arrived(channel, "s").length}`,
    );
    await alice.sync();
    const no = refused(ids).map((el) => el.attrs.id ?? "");
    for (const el of refused(ids)) {
      expect(errorOf(el).condition).toBe("resource-constraint");
      expect(errorOf(el).text).toContain("not sent");
    }
    const out = arrived(channel, "s");
    expect(out.length).toBeLessThanOrEqual(SLOW.floodBurst);
    expect(out.filter((id) => no.includes(id))).toEqual([]);
  });

  it("a burst beyond the queue's bound: each message goes out or is refused, none lost", async () => {
    const channel = `#paced${slot}`;
    const room = await join(channel, "paced.localhost", `paced${slot}`);
    const ids = await burst(room, "p", 40);
    // Everything neither refused must reach IRC (the queue drains at the floor's pace).
    await until(
      () => refused(ids).length + arrived(channel, "p").length >= ids.length,
      60_000,
      () => `refused: ${refused(ids).length}, arrived: ${arrived(channel, "p").length} of ${ids.length}`,
    );
    const no = new Set(refused(ids).map((el) => el.attrs.id));
    expect(no.size).toBeGreaterThan(0);
    // Each once: on IRC or refused, never both, never twice.
    const out = arrived(channel, "p");
    expect(new Set(out).size).toBe(out.length);
    expect([...out].sort()).toEqual(ids.filter((id) => !no.has(id)).sort());
    for (const el of refused(ids)) expect(errorOf(el).condition).toBe("resource-constraint");
  });

  it("without a floor, a burst far beyond the queue's bound goes out whole: nothing waits, nothing is refused", async () => {
    const channel = `#fast${slot}`;
    const room = await join(channel, "fast.localhost", `fast${slot}`);
    const ids = await burst(room, "f", 5 * FAST.maxQueuedLines);
    await until(
      () => arrived(channel, "f").length + refused(ids).length >= ids.length,
      60_000,
      () => `refused: ${refused(ids).length}, arrived: ${arrived(channel, "f").length} of ${ids.length}`,
    );
    expect(refused(ids).map((el) => errorOf(el).text)).toEqual([]);
    expect([...arrived(channel, "f")].sort()).toEqual([...ids].sort());
  });

  it("private messages still waiting for flood control go out before the unused connection's QUIT", async () => {
    const dave = await TestUser.login(peer, `dave-flood-${slot}`);
    try {
      const nick = `Flood${slot}`;
      const to = `${nick.toLowerCase()}%grace.localhost@${domain}`;
      const ids = ["g-0", "g-1", "g-2"];
      for (const id of ids) await dave.send(xml("message", { to, type: "chat", id }, xml("body", {}, id)));
      // One leaves at once; the others wait 2.5 s each, beyond the 1 s grace after the first was sent.
      for (const id of ids) await bob.waitFor((l) => l.endsWith(`PRIVMSG ${nick} :${id}`), 20_000);
      expect(dave.received.filter((el) => el.attrs.type === "error")).toEqual([]);
    } finally {
      await dave.stop();
    }
  });
});
