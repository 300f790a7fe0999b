/**
 * Two gateway processes serving the same domains of one ejabberd (`domain_balancing` by bare source JID,
 * `component_number: 2`), sharing one Redis, with `xmpp.balancing` on: each user's stanzas stay with one
 * instance, an SMS webhook can hit either instance and still reaches its user once, an instance beyond the
 * slots stands by, and when an instance is killed a survivor serves its users until a fresh instance takes
 * its slot back. Runs on a private ejabberd, since the balancing is part of its config.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEjabberd } from "../bed/ejabberd.js";
import type { XmppPeer } from "../bed/index.js";
import { TEST_SECRET } from "../slots.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { registration, TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot } from "../support/gateway.js";
import { spawnEchoSmsInstance, type GatewayProcess } from "../support/process.js";
import { Redis } from "ioredis";
import { Keys, STORE_VERSION } from "../../src/store/keys.js";
import { DELIVERY_GROUP } from "../../src/delivery/inbox.js";

const ACCOUNT = "AC" + "5".repeat(32);
const TOKEN = "balancing-token";
const ECHO = "echo.balanced.localhost";
const SMS = "sms.balanced.localhost";
/**
 * Users bal0…bal5@localhost. ejabberd picks the slot from a hash of the bare JID, so which user lands on which
 * instance is the same on every run (three on each with these names), not a matter of chance.
 */
const USERS = 6;
/**
 * A bound that only catches "never": the takeover comes after xmpp.balancing.deadAfterSeconds (10 s) plus
 * up to a heartbeat (2 s); the time itself is measured and printed, not asserted.
 */
const SERVED_AGAIN_BOUND_MS = 60_000;
/** A dedicated number per user: +12025550600, …601, … */
const number = (i: number) => `+120255506${String(i).padStart(2, "0")}`;

describe("two instances behind ejabberd's domain_balancing", () => {
  const bed = sharedBed();
  let dir: string;
  let ejabberd: XmppPeer;
  let fake: TwilioFake;
  let keyPrefix: string;
  const gateways: GatewayProcess[] = [];
  const users: TestUser[] = [];

  async function instance(name: string, opts: { online?: boolean } = {}): Promise<GatewayProcess> {
    const gw = await spawnEchoSmsInstance({
      dir,
      name,
      peer: ejabberd,
      redisUrl: bed.redis!.url,
      keyPrefix,
      domains: { echo: ECHO, sms: SMS },
      twilio: { accountSid: ACCOUNT, authToken: TOKEN, apiBaseUrl: fake.url },
      dedicated: Object.fromEntries(
        Array.from({ length: USERS }, (_, i) => [number(i), `bal${i}@${ejabberd.host}`]),
      ),
      // The production defaults of heartbeatSeconds and deadAfterSeconds: the time measured below is theirs.
      xmpp: { balancing: { enabled: true } },
    });
    gateways.push(gw);
    if (opts.online ?? true)
      for (const domain of [ECHO, SMS])
        await gw.waitLog("component stream online", { where: (l) => l.domain === domain });
    return gw;
  }

  /** How many messages this instance took from XMPP users for the echo domain. */
  const handled = (gw: GatewayProcess) =>
    gw.metric("xgw_messages_total", { adapter: "echo", direction: "out", outcome: "delivered" });

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    keyPrefix = `balancing-${slot}:`;
    dir = await mkdtemp(path.join(tmpdir(), "gw-balancing-"));
    await chmod(dir, 0o755); // ejabberd runs as its own user and must reach its dir
    const balancing = { by: "bare_source", instances: 2 } as const;
    [ejabberd, fake] = await Promise.all([
      startEjabberd({
        dir: path.join(dir, "ejabberd"),
        host: "localhost",
        components: [
          { domain: ECHO, secret: TEST_SECRET, balancing },
          { domain: SMS, secret: TEST_SECRET, balancing },
        ],
      }),
      startTwilioFake({
        accountSid: ACCOUNT,
        authToken: TOKEN,
        numbers: Array.from({ length: USERS }, (_, i) => number(i)),
      }),
    ]);
    await instance("a");
    await instance("b");
    for (let i = 0; i < USERS; i++) users.push(await TestUser.login(ejabberd, `bal${i}`));
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await Promise.all(gateways.map((g) => g.kill("SIGTERM")));
    await Promise.all([ejabberd?.stop(), fake?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  /** The bodies user i received, from the echo and SMS domains. */
  const bodies = (i: number) =>
    users[i]!.received.filter((el) => el.name === "message").map((el) => el.getChildText("body") ?? "");

  /** Which instance took user i's messages: sends `count` messages and reads both instances' counters. */
  async function ownerOf(
    i: number,
    count: number,
    tag: string,
    among: GatewayProcess[] = gateways.slice(0, 2),
  ): Promise<number[]> {
    const counts = () => Promise.all(among.map(handled));
    const before = await counts();
    for (let k = 0; k < count; k++) {
      const body = `${tag} ${i}.${k}`;
      await users[i]!.send(
        xml("message", { to: `bot@${ECHO}`, id: `${tag}-${i}-${k}`, type: "chat" }, xml("body", {}, body)),
      );
      await users[i]!.waitFor((el) => el.getChildText("body") === body, 15_000);
    }
    // The counter moves just after the echo is persisted, so it may trail the echo itself.
    const delta = async () => (await counts()).map((n, k) => n - before[k]!);
    await expect.poll(async () => (await delta()).reduce((x, y) => x + y), { timeout: 5_000 }).toBe(count);
    return delta();
  }

  it("keeps each user's stanzas on one instance and uses both instances", async () => {
    const owners: number[] = [];
    for (let i = 0; i < USERS; i++) {
      const counts = await ownerOf(i, 4, "stick");
      // All four on one instance, none on the other.
      expect(counts.toSorted(), `user ${i}: ${String(counts)}`).toEqual([0, 4]);
      owners.push(counts[0] === 4 ? 0 : 1);
      // The same user again later: still the same instance.
      expect(await ownerOf(i, 2, "again"), `user ${i}`).toEqual(owners[i] === 0 ? [2, 0] : [0, 2]);
    }
    expect(new Set(owners).size, `owners ${String(owners)}`).toBe(2);
  });

  it("delivers an SMS webhook to its user whichever instance the webhook hits", async () => {
    for (let i = 0; i < USERS; i++) {
      const result = await users[i]!.iq("set", SMS, registration({ mode: "dedicated" }), 15_000);
      expect(result.attrs.type, users[i]!.dump()).toBe("result");
    }
    for (let i = 0; i < USERS; i++) {
      const gw = gateways[i % 2]!;
      const answer = await fake.sendInbound({
        from: "+12025550699",
        to: number(i),
        body: `webhook ${i} via ${i % 2 === 0 ? "a" : "b"}`,
        webhookUrl: `http://127.0.0.1:${gw.httpPort}/sms/twilio/sms`,
      });
      expect(answer.status).toBe(200);
    }
    for (let i = 0; i < USERS; i++) {
      const got = await users[i]!.waitFor(
        (el) => el.getChildText("body")?.startsWith(`webhook ${i} `) === true,
        15_000,
      );
      expect(got.attrs.from).toBe(`+12025550699@${SMS}`);
    }
    // Whichever instance delivered it confirmed it with a ping answered on its own stream: not sent again.
    // (A ping to the server is answered on one slot only: the other instance's barrier never got its pong,
    // and after PING_TIMEOUT_MS it sent the batch again; the last test looks for such copies.)
  });

  it("stands an instance beyond component_number by, with no slot and no traffic", async () => {
    const c = await instance("c", { online: false });
    await c.waitLog("no slot", { where: (l) => l.domain === ECHO });
    for (let i = 0; i < USERS; i++) await ownerOf(i, 1, "with-c");
    expect(await handled(c)).toBe(0);
    await c.kill("SIGTERM");
  });

  it("serves a killed instance's users again through a survivor, until a fresh instance takes its slot back", async () => {
    const [a, b] = gateways;
    const owners: number[] = [];
    for (let i = 0; i < USERS; i++) owners.push((await ownerOf(i, 1, "probe"))[0] === 1 ? 0 : 1);
    const orphans = owners.flatMap((o, i) => (o === 1 ? [i] : []));
    const served = owners.flatMap((o, i) => (o === 0 ? [i] : []));
    expect(orphans.length * served.length).toBeGreaterThan(0);

    await b!.kill("SIGKILL");
    const killedAt = Date.now();
    // What the killed instance had read from the shared inbox and not confirmed when it died: an SMS for an
    // orphan, read under b's name (the read and the write in one transaction, so no live instance reads it).
    const inbox = new Keys(keyPrefix).inbox(SMS);
    const pending = {
      kind: "message",
      to: `bal${orphans[0]!}@${ejabberd.host}`,
      from: `+12025550697@${SMS}`,
      id: "read-by-b",
      type: "chat",
      body: "read by b before it died",
    };
    const redis = new Redis(bed.redis!.url);
    await redis
      .multi()
      .xadd(inbox, "*", "v", String(STORE_VERSION), "e", JSON.stringify(pending))
      .xreadgroup("GROUP", DELIVERY_GROUP, "b", "COUNT", 1, "STREAMS", inbox, ">")
      .exec();
    redis.disconnect();
    // Until a survivor holds the dead slot, ejabberd drops what is hashed to it: ask again until answered.
    const first = orphans[0]!;
    for (let k = 0; ; k++) {
      expect(Date.now() - killedAt, "never served again").toBeLessThan(SERVED_AGAIN_BOUND_MS);
      const body = `revive ${first}.${k}`;
      await users[first]!.send(
        xml(
          "message",
          { to: `bot@${ECHO}`, id: `revive-${first}-${k}`, type: "chat" },
          xml("body", {}, body),
        ),
      );
      const back = await users[first]!.waitFor((el) => el.getChildText("body") === body, 500).catch(
        () => null,
      );
      if (back) break;
    }
    const servedAgainS = (Date.now() - killedAt) / 1000;
    console.log(
      `[balancing] a killed instance's users were served again ${servedAgainS.toFixed(1)} s after SIGKILL`,
    );
    await a!.waitLog("serving a dead instance's slot", { where: (l) => l.domain === ECHO });

    // Every orphan is served by the survivor now, the others as before; an SMS webhook reaches them too.
    for (const i of orphans) expect(await ownerOf(i, 2, "survivor", [a!])).toEqual([2]);
    for (const i of served) expect(await ownerOf(i, 1, "unmoved", [a!])).toEqual([1]);
    for (const i of orphans) {
      const answer = await fake.sendInbound({
        from: "+12025550698",
        to: number(i),
        body: `after the kill ${i}`,
        webhookUrl: `http://127.0.0.1:${a!.httpPort}/sms/twilio/sms`,
      });
      expect(answer.status).toBe(200);
      await users[i]!.waitFor((el) => el.getChildText("body") === `after the kill ${i}`, 15_000);
    }
    expect(await a!.metric("xgw_slot_takeovers_total", { domain: ECHO })).toBe(1);
    // The survivor claimed it with the slot (without waiting for it to be idle for CLAIM_IDLE_MS).
    await a!.waitLog("claimed its pending entries", { where: (l) => l.domain === SMS && l.count === 1 });
    await users[orphans[0]!]!.waitFor((el) => el.getChildText("body") === pending.body, 15_000);

    // A fresh instance asks for the slot back: the survivor closes its extra streams, the fresh one takes it.
    const b2 = await instance("b2");
    await a!.waitLog("gave a dead instance's slots back");
    expect(await a!.metric("xgw_slot_givebacks_total", { domain: ECHO })).toBe(1);
    expect(await a!.metric("xgw_slot_givebacks_total", { domain: SMS })).toBe(1);
    for (const i of orphans) expect(await ownerOf(i, 2, "fresh", [a!, b2])).toEqual([0, 2]);
    for (const i of served) expect(await ownerOf(i, 1, "stays", [a!, b2])).toEqual([1, 0]);
  }, 120_000);

  it("takes a gracefully stopped instance's slot over at once, and gives it back to its restart", async () => {
    const [a, , , b2] = gateways;
    const orphans: number[] = [];
    for (let i = 0; i < USERS; i++)
      if ((await ownerOf(i, 1, "before-stop", [a!, b2!]))[1] === 1) orphans.push(i);
    // A stop deletes the instance's heartbeat once its streams are closed: no waiting for it to expire.
    await b2!.kill("SIGTERM");
    // Served once the extra stream is up (it holds the slot from then on); a message sent before is dropped.
    await a!.waitLog("serving a dead instance's slot", {
      where: (l) => l.deadInstance === "b2" && l.domain === ECHO,
    });
    for (const i of orphans) expect(await ownerOf(i, 1, "after-stop", [a!])).toEqual([1]);
    // The same instance id again: it asks for its own slot back.
    const again = await instance("b2");
    await again.waitLog("the slot is free");
    for (const i of orphans) expect(await ownerOf(i, 1, "restarted", [a!, again])).toEqual([0, 1]);
    expect(await a!.metric("xgw_slot_givebacks_total", { domain: ECHO })).toBe(2);
  }, 120_000);

  it("leaves the slot to an instance that started before the death was noticed", async () => {
    const [a] = gateways;
    const killed = gateways.at(-1)!;
    const orphans: number[] = [];
    for (let i = 0; i < USERS; i++)
      if ((await ownerOf(i, 1, "before-race", [a!, killed]))[1] === 1) orphans.push(i);
    await killed.kill("SIGKILL");
    // Within deadAfterSeconds: nobody holds the dead slot yet, so the new instance takes it when it connects.
    const early = await instance("b3");
    for (const i of orphans) expect(await ownerOf(i, 1, "early", [a!, early])).toEqual([0, 1]);
    // A survivor (either) still notices the death and opens extra streams; they find no slot, and it gives up.
    const gaveUp = (gw: GatewayProcess) =>
      gw.waitLog("gave a dead instance's slots back", {
        timeoutMs: 60_000,
        where: (l) => l.reason === "an instance started since fills the slot",
      });
    await Promise.any([gaveUp(a!), gaveUp(early)]);
    for (const i of orphans) expect(await ownerOf(i, 1, "still-early", [a!, early])).toEqual([0, 1]);
  }, 120_000);

  it("delivered no message twice", async () => {
    for (let i = 0; i < USERS; i++) {
      await users[i]!.sync();
      const all = bodies(i);
      expect(
        all.filter((body, k) => all.indexOf(body) !== k),
        `user ${i}`,
      ).toEqual([]);
    }
    for (const gw of gateways) expect(gw.lines.filter((l) => l.msg === "delivery paused")).toEqual([]);
  });
});
