/**
 * One bad inbound entry must not hold a domain down: values from outside are cleaned before they reach a
 * stanza, an entry that cannot be delivered goes to the dead-letter stream after a few attempts (the admins
 * are told, without the body, and a metric counts it), and everything behind it is delivered.
 */
import { once } from "node:events";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { InvalidInboundEventError } from "../../src/delivery/event-schema.js";
import { Keys } from "../../src/store/keys.js";
import { LinkDownError } from "../../src/xmpp/link.js";

describe("poison inbound entries", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let gw: TestGateway;
  let domain: string;
  let raw: Redis;
  let alice: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    alice = await TestUser.login(peer, `alice-poison-${slot}`);
    admin = await TestUser.login(peer, `admin-poison-${slot}`);
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [admin.bare],
      echo: { requireRegistration: false },
    });
    domain = gw.domain;
    raw = new Redis(bed.redis!.url);
  });

  afterAll(async () => {
    raw?.disconnect();
    await alice?.stop();
    await admin?.stop();
    await gw?.stop();
  });

  async function deadLetterCount(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    return Number(/^xgw_dead_letters_total\{adapter="echo"\} (\S+)$/m.exec(text)?.[1] ?? "0");
  }

  it("sets an undeliverable entry aside, tells the admins and delivers the rest of the domain", async () => {
    const keys = new Keys(gw.keyPrefix);
    const message = (fields: Record<string, unknown>) =>
      JSON.stringify({ kind: "message", to: alice.bare, from: `bot@${domain}`, type: "chat", ...fields });
    // Written straight into the inbox, as a bug or an older release could have: nothing checked them.
    await raw
      .multi()
      // The XMPP server closes the component stream on a stanza from another domain (invalid-from).
      .xadd(
        keys.inbox(domain),
        "*",
        "v",
        "1",
        "e",
        message({ from: "bot@elsewhere.example", id: "poison-from", body: "SECRET-1" }),
      )
      // Control characters in the id and the delay stamp (an IRC msgid or server-time tag).
      .xadd(
        keys.inbox(domain),
        "*",
        "v",
        "1",
        "e",
        message({ id: "ctrl\u0001-id", delay: "2024\u0007-01", body: "cleaned" }),
      )
      // Unreadable.
      .xadd(keys.inbox(domain), "*", "v", "1", "e", JSON.stringify({ kind: "nonsense", body: "SECRET-2" }))
      .xadd(keys.inbox(domain), "*", "v", "1", "e", message({ id: "good-1", body: "first" }))
      .xadd(keys.inbox(domain), "*", "v", "1", "e", message({ id: "good-2", body: "second" }))
      .exec();

    await alice.waitFor((el) => el.attrs.id === "good-1", 60_000);
    await alice.waitFor((el) => el.attrs.id === "good-2", 20_000);
    const cleaned = await alice.waitFor((el) => el.getChildText("body") === "cleaned", 20_000);
    expect(cleaned.attrs.id).toBe("ctrl-id");
    expect(cleaned.getChild("delay", "urn:xmpp:delay")).toBeUndefined();

    await expect.poll(() => raw.xlen(keys.deadLetters(domain)), { timeout: 20_000 }).toBe(2);
    const dead = await raw.xrange(keys.deadLetters(domain), "-", "+");
    const reasons = dead.map(([, fields]) => fields[fields.indexOf("reason") + 1]);
    expect(reasons).toHaveLength(2);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringContaining("did not confirm it after 5 attempts"),
        expect.stringContaining("kind"),
      ]),
    );
    await expect.poll(() => gw.gateway.inbox.depth(domain), { timeout: 20_000 }).toBe(0);

    const notes = async () => {
      await admin.sync();
      return admin.received.filter((el) => el.name === "message" && el.attrs.from === domain);
    };
    await expect.poll(async () => (await notes()).length, { timeout: 20_000 }).toBe(2);
    const texts = (await notes()).map((el) => el.getChildText("body") ?? "");
    expect(texts).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/A message for .* \(id poison-from\).*dead-letter/),
        expect.stringContaining("An unreadable entry"),
      ]),
    );
    for (const text of texts) expect(text).not.toMatch(/SECRET/);
    expect(await deadLetterCount()).toBe(2);
  }, 120_000);

  it("finds a bad entry deep among hundreds sent in a row, and delivers every other one", async () => {
    const keys = new Keys(gw.keyPrefix);
    const before = await raw.xlen(keys.deadLetters(domain));
    const link = gw.gateway.services.get("echo")!.ctx.link;
    const message = (fields: Record<string, unknown>) =>
      JSON.stringify({ kind: "message", to: alice.bare, from: `bot@${domain}`, type: "chat", ...fields });
    // Written while the stream is down, so that they go out as several batches in a row when it is back; the
    // bad one (the server closes the stream on it) sits in the middle of the second.
    const offline = once(link, "offline");
    await link.entity.disconnect(1000);
    await offline;
    const multi = raw.multi();
    for (let i = 0; i < 400; i++) {
      if (i === 150)
        multi.xadd(
          keys.inbox(domain),
          "*",
          "v",
          "1",
          "e",
          message({ from: "bot@elsewhere.example", id: "deep", body: "deep" }),
        );
      multi.xadd(keys.inbox(domain), "*", "v", "1", "e", message({ id: `row-${i}`, body: `row ${i}` }));
    }
    await multi.exec();
    await link.waitOnline(AbortSignal.timeout(30_000));
    const reconnects = link.reconnects;

    const got = () =>
      new Set(alice.received.map((el) => el.attrs.id).filter((id): id is string => !!id?.startsWith("row-")));
    await expect.poll(() => got().size, { timeout: 90_000 }).toBe(400);
    await expect.poll(() => raw.xlen(keys.deadLetters(domain)), { timeout: 30_000 }).toBe(before + 1);
    const [[, fields] = ["", []]] = await raw.xrevrange(keys.deadLetters(domain), "+", "-", "COUNT", 1);
    expect(fields[fields.indexOf("reason") + 1]).toContain("did not confirm it after 5 attempts");
    // The stream went down once for the batch that held it, then once per attempt at it alone: not once for
    // every entry that happened to share its batches.
    expect(link.reconnects - reconnects).toBeLessThanOrEqual(1 + 5 + 1);
    await expect.poll(() => gw.gateway.inbox.depth(domain), { timeout: 20_000 }).toBe(0);
  }, 150_000);

  it("cleans or refuses an event at deliver()", async () => {
    const ctx = gw.gateway.services.get("echo")!.adapterContext();
    await expect(
      ctx.deliver({ kind: "message", to: "not a jid", from: `bot@${domain}`, id: "x", body: "hi" }),
    ).rejects.toBeInstanceOf(InvalidInboundEventError);
    await expect(
      ctx.deliver({ kind: "message", to: alice.bare, from: "bot@elsewhere.example", id: "y", body: "hi" }),
    ).rejects.toBeInstanceOf(InvalidInboundEventError);
    expect(
      await ctx.deliver({
        kind: "message",
        to: alice.bare,
        from: `bot@${domain}`,
        id: "msg\u001b[1mid",
        delay: "not a date",
        body: "bell\u0007 rings",
      }),
    ).toBe(true);
    const got = await alice.waitFor((el) => el.attrs.id === "msg[1mid", 20_000);
    expect(got.getChildText("body")).toBe("bell rings");
    expect(got.getChild("delay", "urn:xmpp:delay")).toBeUndefined();
  }, 60_000);

  it("confirms a batch only by a pong on the connection that carried it", async () => {
    const link = gw.gateway.services.get("echo")!.ctx.link;
    const carried = link.generation;
    const offline = once(link, "offline");
    await link.entity.disconnect(1000);
    await offline;
    await link.waitOnline(AbortSignal.timeout(20_000));
    // The new stream answers pings, but says nothing about what the old one carried.
    await expect(link.ping(undefined, carried)).rejects.toBeInstanceOf(LinkDownError);
    await expect(link.send(xml("message", { to: alice.bare, from: domain }), carried)).rejects.toBeInstanceOf(
      LinkDownError,
    );
    await link.ping(undefined, link.generation);
  }, 60_000);
});
