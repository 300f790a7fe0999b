/**
 * A deployment upgrading from the key layout before hash tags: its Redis holds a registration, a number an
 * administrator assigned, an inbound SMS taken but not yet delivered (pending in the delivery group, as when
 * the old release was stopped mid-delivery), its dedupe marker and an outbound ledger entry, all under the old
 * names. The gateway renames them once at start, then serves them: the pending SMS reaches the user once (a
 * replay of its webhook is still recognised), the assigned number still routes, and a resend of the message
 * already sent does not go to Twilio again. Two instances starting together rename everything once.
 */
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { DELIVERY_GROUP } from "../../src/delivery/inbox.js";
import { Keys } from "../../src/store/keys.js";
import { KEY_SCHEMA, migrateKeys } from "../../src/store/migrate.js";

const ACCOUNT = "AC" + "8".repeat(32);
const TOKEN = "migrate-token";
const OWN = "+12025550800";
const CONTACT = "+12025550811";
const PENDING_SID = "SM" + "8".repeat(32);

describe("keys from before hash tags", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let redis: Redis;
  let fake: TwilioFake;
  let gw: TestGateway;
  let user: TestUser;
  let domain: string;
  let keys: Keys;
  let slot: number;

  beforeAll(async () => {
    redis = new Redis(bed.redis!.url);
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "sms");
    const prefix = `migrate-${slot}:`;
    keys = new Keys(prefix);
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
    user = await TestUser.login(peer, `migrate-${slot}`);
    const bare = user.jid.split("/")[0]!;
    const instanceId = `migrate-${slot}`;

    // What the release before hash tags left in Redis, under its names.
    const registration = { v: 1, at: new Date().toISOString(), fields: { mode: "dedicated" } };
    await redis.hset(`${prefix}reg:sms`, bare, JSON.stringify(registration));
    await redis.hset(`${prefix}a:sms:owners`, OWN, bare);
    await redis.hset(`${prefix}a:sms:dedicated-by-user`, bare, OWN);
    const inbox = `${prefix}inbox:${domain}`;
    await redis.xgroup("CREATE", inbox, DELIVERY_GROUP, "0", "MKSTREAM");
    const event = { kind: "message", to: bare, from: `${CONTACT}@${domain}`, id: PENDING_SID, body: "kept" };
    await redis.xadd(inbox, "*", "v", "1", "e", JSON.stringify(event));
    await redis.set(`${prefix}in:${domain}:${PENDING_SID}`, "1", "EX", 3600);
    // Read by the old release's deliverer (this instance), never acknowledged: pending.
    await redis.xreadgroup("GROUP", DELIVERY_GROUP, instanceId, "COUNT", 10, "STREAMS", inbox, ">");
    await redis.set(
      `${prefix}out:sms:${user.jid}:sent-before`,
      JSON.stringify({ v: 1, state: "accepted" }),
      "EX",
      3600,
    );

    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: prefix,
      instanceId,
      adapters: {
        sms: {
          twilio: {
            accountSid: ACCOUNT,
            authTokenEnv: "TEST_TWILIO_TOKEN",
            apiBaseUrl: fake.url,
            timeoutSeconds: 2,
          },
        },
      },
      env: { TEST_TWILIO_TOKEN: TOKEN },
    });
  });

  afterAll(async () => {
    await user?.stop();
    await gw?.stop();
    await fake?.stop();
    redis?.disconnect();
  });

  const fromContact = () =>
    user.received.filter((el) => el.name === "message" && el.attrs.from === `${CONTACT}@${domain}`);

  it("renames every old key once, keeping the delivery group, the pending entry and the TTLs", async () => {
    expect(await redis.get(keys.schema())).toBe(String(KEY_SCHEMA));
    expect(await redis.exists(`${keys.prefix}inbox:${domain}`, `${keys.prefix}a:sms:owners`)).toBe(0);
    expect(await redis.hget(keys.adapterKey("sms")("owners"), OWN)).toBe(user.jid.split("/")[0]);
    expect(await redis.ttl(keys.inboundSeen(domain, PENDING_SID))).toBeGreaterThan(0);
    expect(await redis.ttl(keys.outboundSeen("sms", user.jid, "sent-before"))).toBeGreaterThan(0);
    const groups = (await redis.xinfo("GROUPS", keys.inbox(domain))) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([DELIVERY_GROUP]);
  });

  it("delivers the SMS left pending once, and recognises a replay of its webhook", async () => {
    await user.waitFor((el) => el.attrs.id === PENDING_SID && el.getChildText("body") === "kept");
    const replay = await fake.sendInbound({
      from: CONTACT,
      to: OWN,
      body: "kept",
      messageSid: PENDING_SID,
      webhookUrl: `http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`,
    });
    expect(replay.status).toBe(200);
    // The assigned number still routes a new SMS to the user; it arrives after anything queued before it.
    const next = await fake.sendInbound({
      from: CONTACT,
      to: OWN,
      body: "new",
      webhookUrl: `http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`,
    });
    expect(next.status).toBe(200);
    await user.waitFor((el) => el.getChildText("body") === "new");
    expect(fromContact().map((el) => el.getChildText("body"))).toEqual(["kept", "new"]);
  });

  it("does not send again a message the ledger already recorded as sent", async () => {
    const chat = (id: string, body: string) =>
      xml("message", { to: `${CONTACT}@${domain}`, id, type: "chat" }, xml("body", {}, body));
    await user.send(chat("sent-before", "sent again?"));
    await user.send(chat("after", "after"));
    await expect.poll(() => fake.sent().map((m) => m.body), { timeout: 10_000 }).toContain("after");
    expect(fake.sent().map((m) => m.body)).toEqual(["after"]);
  });

  it("renames once when two instances start together", async () => {
    const prefix = `migrate-pair-${slot}:`;
    const pair = new Keys(prefix);
    for (let i = 0; i < 50; i++) await redis.set(`${prefix}in:d.example:${i}`, "1", "EX", 600);
    const [a, b] = [new Redis(bed.redis!.url), new Redis(bed.redis!.url)];
    try {
      const log = pino({ level: "silent" });
      const renamed = await Promise.all([migrateKeys(a, pair, log), migrateKeys(b, pair, log)]);
      expect(renamed[0] + renamed[1]).toBe(50);
      expect(await redis.get(pair.schema())).toBe(String(KEY_SCHEMA));
      expect(await redis.exists(pair.schemaLock())).toBe(0);
      expect((await redis.keys(`${prefix}in:*`)).sort()).toEqual(
        Array.from({ length: 50 }, (_, i) => pair.inboundSeen("d.example", String(i))).sort(),
      );
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });
});
