/**
 * Two gateway processes serving the same domains of one ejabberd (`domain_balancing` by bare source JID,
 * `component_number: 2`), sharing one Redis: each user's stanzas stay with one instance, an SMS webhook can hit
 * either instance and still reaches its user, and what happens to a user whose instance is killed.
 * Runs on a private ejabberd, since the balancing is part of its config.
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

const ACCOUNT = "AC" + "5".repeat(32);
const TOKEN = "balancing-token";
const ECHO = "echo.balanced.localhost";
const SMS = "sms.balanced.localhost";
/**
 * Users bal0…bal5@localhost. ejabberd picks the slot from a hash of the bare JID, so which user lands on which
 * instance is the same on every run (three on each with these names), not a matter of chance.
 */
const USERS = 6;
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

  async function instance(name: string): Promise<GatewayProcess> {
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
    });
    gateways.push(gw);
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

  /** Which instance took user i's messages: sends `count` messages and reads both instances' counters. */
  async function ownerOf(
    i: number,
    count: number,
    tag: string,
    [a, b] = gateways.slice(0, 2),
  ): Promise<number[]> {
    const before = [await handled(a!), await handled(b!)];
    for (let k = 0; k < count; k++) {
      const body = `${tag} ${i}.${k}`;
      await users[i]!.send(
        xml("message", { to: `bot@${ECHO}`, id: `${tag}-${i}-${k}`, type: "chat" }, xml("body", {}, body)),
      );
      await users[i]!.waitFor((el) => el.getChildText("body") === body, 15_000);
    }
    // The counter moves just after the echo is persisted, so it may trail the echo itself.
    const delta = async () => [(await handled(a!)) - before[0]!, (await handled(b!)) - before[1]!];
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
  });

  it("drops, without an error, what ejabberd routes to a dead instance's slot, until an instance fills it", async () => {
    const [a, b] = gateways;
    const owners: number[] = [];
    for (let i = 0; i < USERS; i++) owners.push((await ownerOf(i, 1, "probe"))[0] === 1 ? 0 : 1);
    expect(new Set(owners).size).toBe(2);
    // A third instance connects while both slots are taken: ejabberd accepts it but routes it nothing.
    const c = await instance("c");
    for (let i = 0; i < USERS; i++) await ownerOf(i, 1, "with-c");
    expect(await handled(c)).toBe(0);

    await b!.kill("SIGKILL");
    const orphans = owners.flatMap((o, i) => (o === 1 ? [i] : []));
    const served = owners.flatMap((o, i) => (o === 0 ? [i] : []));
    for (const i of served) expect(await ownerOf(i, 1, "survivor", [a!, c])).toEqual([1, 0]);
    for (const i of orphans)
      await users[i]!.send(
        xml("message", { to: `bot@${ECHO}`, id: `lost-${i}`, type: "chat" }, xml("body", {}, `lost ${i}`)),
      );
    // The restarted instance takes the free slot and serves the orphaned users again; what was sent to the
    // empty slot before (same user, same server, in order) was not kept for it: it is gone, and no error
    // came back.
    await instance("b2");
    for (const i of orphans) {
      await users[i]!.send(
        xml("message", { to: `bot@${ECHO}`, id: `back-${i}`, type: "chat" }, xml("body", {}, `back ${i}`)),
      );
      await users[i]!.waitFor((el) => el.getChildText("body") === `back ${i}`, 15_000);
      await users[i]!.sync();
      const lost = users[i]!.received.filter(
        (el) => el.toString().includes(`lost-${i}`) || el.getChildText("body") === `lost ${i}`,
      );
      expect(lost, users[i]!.dump()).toEqual([]);
    }
    expect(await handled(c)).toBe(0);
  }, 120_000);
});
