/**
 * Outcomes of a send when the gateway's own store fails: Twilio took the SMS, then Redis went away before
 * the gateway could record it. The user must not be told "nothing was done, try again" (a retry would be a
 * second SMS), and a resend of the same stanza once Redis is back is not sent again. Runs on a private
 * Redis, which the test stops.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startRedis, type RedisPeer } from "../bed/redis.js";
import { slotDomain } from "../slots.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { registration, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const ACCOUNT = "AC" + "6".repeat(32);
const TOKEN = "outcome-token";
const OWN = "+12025550600";
const CONTACT = "+12025550611";

let dir: string;
let redis: RedisPeer;
let fake: TwilioFake;
let gw: TestGateway;
let user: TestUser;
let domain: string;

beforeAll(async () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const slot = await takeSlot(bed);
  domain = slotDomain(slot, "sms");
  dir = await mkdtemp(path.join(tmpdir(), "gw-outcomes-"));
  redis = await startRedis({ dir: path.join(dir, "redis"), appendOnly: true });
  fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  const userName = `outcome-${slot}`;
  gw = await startTestGateway({
    peer,
    redisUrl: redis.url,
    slot,
    adapters: {
      sms: {
        twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url },
        numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
      },
    },
    env: { TOKEN },
  });
  user = await TestUser.login(peer, userName);
  const reg = await user.iq("set", domain, registration({ mode: "dedicated" }));
  expect(reg.attrs.type, user.dump()).toBe("result");
});

afterAll(async () => {
  await user?.stop();
  await gw?.stop();
  await fake?.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sms = (id: string, body: string) =>
  xml("message", { to: `${CONTACT}@${domain}`, id, type: "chat" }, xml("body", {}, body));

async function handedOn(): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
  const m = /^xgw_messages_total\{adapter="sms",direction="out",outcome="accepted"\} (\d+)$/m.exec(metrics);
  return Number(m?.[1] ?? "0");
}

it("never says 'nothing was done' when Redis fails after Twilio took the SMS, and never sends it twice", async () => {
  const held = fake.hold();
  await user.send(sms("held-1", "took it"));
  await held.reached;
  await redis.stop();
  held.release();
  // The gateway learns Twilio created the SMS while its store is down: it counts it handed on, or answers.
  const isError = (el: Element) => el.attrs.type === "error" && el.attrs.id === "held-1";
  await expect
    .poll(async () => (await handedOn()) === 1 || user.received.some(isError), { timeout: 15_000 })
    .toBe(true);
  await user.sync();
  expect(user.received.filter(isError).map((el) => el.toString())).toEqual([]);

  await redis.start();
  await gw.gateway.services.get("sms")!.ctx.link.ping();
  await expect.poll(async () => (await gw.gateway.readiness()).ready, { timeout: 20_000 }).toBe(true);
  // The client resends the same stanza: not sent again. A later message shows the resend had its turn.
  await user.send(sms("held-1", "took it"));
  await user.send(sms("after-1", "and this"));
  await expect.poll(() => fake.sent().map((m) => m.body), { timeout: 15_000 }).toContain("and this");
  expect(fake.sent().filter((m) => m.body === "took it")).toHaveLength(1);
  // The outcome the store missed is recorded once it is back: a resend now hears "already sent".
  await user.send(sms("held-1", "took it"));
  const note = await user.waitFor(
    (el) => el.getChildText("body")?.includes("(id held-1) was already sent") === true,
  );
  expect(note.attrs.from).toBe(domain);
  expect(fake.sent().filter((m) => m.body === "took it")).toHaveLength(1);
  await user.sync();
  expect(user.received.filter(isError).map((el) => el.toString())).toEqual([]);
});
