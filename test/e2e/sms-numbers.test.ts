/**
 * Who owns which SMS number, over time: the config's dedicated numbers keep routing after Redis loses its
 * data (FLUSHALL under a running gateway), and a pool binding left idle expires, so its number serves
 * another user. The gateway runs on a Redis of its own (FLUSHALL must not touch the other test files).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedis, type RedisPeer } from "../bed/redis.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { slotDomain } from "../slots.js";
import { errorOf, registration, TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { DELIVERY_GROUP } from "../../src/delivery/inbox.js";
import { Keys } from "../../src/store/keys.js";

const ACCOUNT = "AC" + "5".repeat(32);
const TOKEN = "numbers-token";
const OWN = "+12025550501"; // alice's dedicated number, from the config
const SHARED = "+12025550601"; // the whole pool
/** Pool bindings expire after this long without a message (config numbers.poolBindingIdleSeconds). */
const IDLE_SECONDS = 1;

const chat = (to: string, id: string, body: string) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body));

describe("SMS numbers over time", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let dir: string;
  let redis: RedisPeer;
  let fake: TwilioFake;
  let gw: TestGateway;
  let domain: string;
  let webhook: string;
  let keyPrefix: string;
  const users: TestUser[] = [];

  async function user(name: string, mode: string) {
    const u = await TestUser.login(peer, `${name}-num-${domain.split(".")[0]}`);
    users.push(u);
    const reg = await u.iq("set", domain, registration({ mode }));
    expect(reg.attrs.type, u.dump()).toBe("result");
    return u;
  }

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "sms");
    keyPrefix = `sms-numbers-${slot}:`;
    dir = await mkdtemp(path.join(tmpdir(), "gw-sms-numbers-"));
    redis = await startRedis({ dir: path.join(dir, "redis") });
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN, SHARED] });
    gw = await startTestGateway({
      peer,
      redisUrl: redis.url,
      slot,
      keyPrefix,
      logDir: dir,
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url },
          numbers: {
            dedicated: { [OWN]: `alice-num-${domain.split(".")[0]}@${peer.host}` },
            pool: [SHARED],
            poolBindingIdleSeconds: IDLE_SECONDS,
          },
        },
      },
      env: { TOKEN },
    });
    webhook = `http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`;
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
    await redis?.stop();
    if (dir && process.env.GW_KEEP_BED !== "1") await rm(dir, { recursive: true, force: true });
  });

  it("frees an idle pool number for the next user, whose contact's replies then reach them", async () => {
    const contact = "+12025550650";
    const bob = await user("bob", "pool");
    const carol = await user("carol", "pool");
    await bob.send(chat(`${contact}@${domain}`, "bob-1", "hello from bob"));
    await expect
      .poll(() => fake.sent().find((m) => m.body === "hello from bob")?.from, { timeout: 10_000 })
      .toBe(SHARED);

    // The only shared number is bob's with this contact until his binding has been idle long enough:
    // carol is refused (resource-constraint) until then, then texts from it.
    let sentFrom: string | undefined;
    for (let attempt = 0; !sentFrom; attempt++) {
      expect(attempt, carol.dump()).toBeLessThan(60);
      const id = `carol-${attempt}`;
      const body = `carol's try ${attempt}`;
      await carol.send(chat(`${contact}@${domain}`, id, body));
      const answered = () =>
        carol.received.find((el) => el.attrs.id === id && el.attrs.type === "error") ??
        fake.sent().find((m) => m.body === body);
      await expect.poll(answered, { timeout: 15_000 }).toBeTruthy();
      const refused = carol.received.find((el) => el.attrs.id === id && el.attrs.type === "error");
      if (refused) expect(errorOf(refused).condition).toBe("resource-constraint");
      else sentFrom = fake.sent().find((m) => m.body === body)?.from ?? undefined;
      if (!sentFrom) await new Promise((r) => setTimeout(r, 250)); // pace the retries, not an assertion
    }
    expect(sentFrom).toBe(SHARED);

    await fake.sendInbound({ from: contact, to: SHARED, body: "hi carol", webhookUrl: webhook });
    await carol.waitFor((el) => el.getChildText("body") === "hi carol");
    await bob.sync();
    expect(bob.received.some((el) => el.getChildText("body") === "hi carol")).toBe(false);
  });

  it("keeps routing the config's dedicated number both ways after Redis loses every key", async () => {
    const alice = await user("alice", "dedicated");
    const admin = new Redis(redis.url);
    try {
      await admin.flushall();
      // The deliverer's consumer group went with the data; re-creating it by itself is the deliverer's
      // concern (tested with the faults). Here it is put back, so this test looks at routing alone.
      await admin
        .xgroup("CREATE", new Keys(keyPrefix).inbox(domain), DELIVERY_GROUP, "0", "MKSTREAM")
        .catch((err: unknown) => {
          if (!String(err).includes("BUSYGROUP")) throw err;
        });
    } finally {
      admin.disconnect();
    }

    const answer = await fake.sendInbound({
      from: "+12025550699",
      to: OWN,
      body: "still yours?",
      webhookUrl: webhook,
    });
    expect(answer.status).toBe(200);
    const reply = await alice.waitFor((el) => el.getChildText("body") === "still yours?", 15_000);
    expect(reply.attrs.from).toBe(`+12025550699@${domain}`);

    // Her registration went with the data too: she registers again, and the form still offers her own number.
    const reg = await alice.iq("set", domain, registration({ mode: "dedicated" }));
    expect(reg.attrs.type, alice.dump()).toBe("result");
    await alice.send(chat(`+12025550699@${domain}`, "after-flush", "yes, still mine"));
    await expect
      .poll(() => fake.sent().find((m) => m.body === "yes, still mine"), { timeout: 10_000 })
      .toMatchObject({ from: OWN, to: "+12025550699" });
  });
});
