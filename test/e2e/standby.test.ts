/**
 * Two gateway processes for the same domains on Prosody, which accepts one component connection per domain:
 * the second waits as a hot standby and takes over when the first is killed (SIGKILL, no goodbye), and what
 * the dead instance had accepted from the network (SMS webhooks answered 200 while its stream was down)
 * reaches the user through the survivor. Runs on a private Prosody, since one test stops it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProsody } from "../bed/prosody.js";
import type { XmppPeer } from "../bed/index.js";
import { TEST_SECRET } from "../slots.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { registration, TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot } from "../support/gateway.js";
import { spawnEchoSmsInstance, type GatewayProcess } from "../support/process.js";
import { CLAIM_IDLE_MS } from "../../src/delivery/deliverer.js";

const ACCOUNT = "AC" + "6".repeat(32);
const TOKEN = "standby-token";
const OWN = "+12025550700";
const CONTACT = "+12025550711";
const ECHO = "echo.standby.localhost";
const SMS = "sms.standby.localhost";

describe("a hot standby instance on Prosody", () => {
  const bed = sharedBed();
  let dir: string;
  let prosody: XmppPeer;
  let fake: TwilioFake;
  let keyPrefix: string;
  let userName: string;
  const gateways: GatewayProcess[] = [];
  const users: TestUser[] = [];

  async function instance(name: string): Promise<GatewayProcess> {
    const gw = await spawnEchoSmsInstance({
      dir,
      name,
      peer: prosody,
      redisUrl: bed.redis!.url,
      keyPrefix,
      domains: { echo: ECHO, sms: SMS },
      twilio: { accountSid: ACCOUNT, authToken: TOKEN, apiBaseUrl: fake.url },
      dedicated: { [OWN]: `${userName}@${prosody.host}` },
      xmpp: { conflictRetrySeconds: 1 },
    });
    gateways.push(gw);
    return gw;
  }

  const online = (gw: GatewayProcess, domain: string) =>
    gw.waitLog("component stream online", { where: (l) => l.domain === domain });
  const standingBy = (gw: GatewayProcess, domain: string) =>
    gw.waitLog("hot standby", { where: (l) => l.domain === domain });

  async function login(): Promise<TestUser> {
    const user = await TestUser.login(prosody, userName);
    users.push(user);
    return user;
  }

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    keyPrefix = `standby-${slot}:`;
    userName = `sam-standby-${slot}`;
    dir = await mkdtemp(path.join(tmpdir(), "gw-standby-"));
    [prosody, fake] = await Promise.all([
      startProsody({
        dir: path.join(dir, "prosody"),
        host: "localhost",
        components: [
          { domain: ECHO, secret: TEST_SECRET },
          { domain: SMS, secret: TEST_SECRET },
        ],
      }),
      startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] }),
    ]);
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await Promise.all(gateways.map((g) => g.kill("SIGTERM")));
    await Promise.all([prosody?.stop(), fake?.stop()]);
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  it("takes over both domains when the active instance is killed", async () => {
    const a = await instance("a");
    await Promise.all([online(a, ECHO), online(a, SMS)]);
    const b = await instance("b");
    await Promise.all([standingBy(b, ECHO), standingBy(b, SMS)]);

    const sam = await login();
    expect((await sam.iq("set", SMS, registration({ mode: "dedicated" }))).attrs.type).toBe("result");
    await sam.send(xml("message", { to: `bot@${ECHO}`, id: "e-1", type: "chat" }, xml("body", {}, "first")));
    await sam.waitFor((el) => el.getChildText("body") === "first");

    await a.kill("SIGKILL");
    await Promise.all([online(b, ECHO), online(b, SMS)]);
    await sam.send(
      xml("message", { to: `bot@${ECHO}`, id: "e-2", type: "chat" }, xml("body", {}, "after the kill")),
    );
    await sam.waitFor((el) => el.getChildText("body") === "after the kill");
    await sam.send(
      xml("message", { to: `${CONTACT}@${SMS}`, id: "s-1", type: "chat" }, xml("body", {}, "by sms")),
    );
    await expect.poll(() => fake.sent().map((m) => m.body), { timeout: 10_000 }).toContain("by sms");
    expect(
      await b.metric("xgw_messages_total", { adapter: "sms", direction: "out", outcome: "accepted" }),
    ).toBeGreaterThan(0);
  });

  it(
    "delivers through the survivor what the killed instance accepted while its stream was down",
    async () => {
      const b = gateways[1]!;
      const c = await instance("c");
      await Promise.all([standingBy(c, ECHO), standingBy(c, SMS)]);
      await users.pop()!.stop();

      // The XMPP server goes away; the active instance keeps answering Twilio, persisting each SMS first.
      await prosody.stop();
      await b.waitLog("component stream lost", { where: (l) => l.domain === SMS });
      for (let i = 0; i < 3; i++) {
        const answer = await fake.sendInbound({
          from: CONTACT,
          to: OWN,
          body: `while down ${i}`,
          webhookUrl: `http://127.0.0.1:${b.httpPort}/sms/twilio/sms`,
        });
        expect(answer.status).toBe(200);
      }
      await b.kill("SIGKILL");
      await prosody.start();
      await online(c, SMS);

      const sam = await login(); // each message waits in offline storage or arrives live
      for (let i = 0; i < 3; i++) {
        // What the dead instance had already read from the shared inbox when its stream dropped stays
        // pending under its name until it has been idle for CLAIM_IDLE_MS (60 s); the survivor then claims
        // it, checking once per CLAIM_IDLE_MS: up to about two minutes.
        const got = await sam.waitFor(
          (el) => el.getChildText("body") === `while down ${i}`,
          2 * CLAIM_IDLE_MS + 30_000,
        );
        expect(got.attrs.from).toBe(`${CONTACT}@${SMS}`);
      }
      await sam.sync();
      expect(sam.received.filter((el) => el.getChildText("body")?.startsWith("while down "))).toHaveLength(3);
    },
    4 * CLAIM_IDLE_MS,
  );
});
