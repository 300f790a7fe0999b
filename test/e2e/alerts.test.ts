/**
 * Alerts as the people who get them and the scripts that send them see it: one API call reaches a person
 * over XMPP, then SMS, then email, until they acknowledge. Real Prosody, Redis, the Twilio-compatible
 * server and an SMTP relay; short policy timings (never asserted on).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../../src/store/keys.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { slotDomain } from "../slots.js";
import { runCommand, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, testConfig, type TestGateway } from "../support/gateway.js";
import { spawnGateway } from "../support/process.js";
import { TEST_SECRET } from "../slots.js";
import { startRelay, type TestRelay } from "../support/relay.js";
import { AlertStore } from "../../adapters/notify/store.js";

const ACCOUNT = "AC" + "2".repeat(32);
const TWILIO_TOKEN = "notify-twilio-token";
const FROM = "+12025550400";
const API_TOKEN = "alerts-api-token-0123456789";
const OTHER_TOKEN = "alerts-other-token-0123456789";
const RECEIPTS = "urn:xmpp:receipts";

describe("alerts: API, escalation and acknowledgement", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let relay: TestRelay;
  let gw: TestGateway;
  let domain: string;
  let api: string;
  let redis: Redis;
  const users: TestUser[] = [];
  let tag: string;

  const jidOf = (name: string) => `${name}-${tag}@${peer.host}`;
  const post = (body: unknown, headers: Record<string, string> = {}, token = API_TOKEN) =>
    fetch(`${api}/api/v1/alerts`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const status = async (id: string) => {
    const res = await fetch(`${api}/api/v1/alerts/${id}`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as {
      recipients: { jid: string; acknowledged: unknown; channels: Record<string, { state: string }> }[];
    };
  };
  const stateOf = async (id: string, jid: string, channel: string) =>
    (await status(id)).recipients.find((r) => r.jid === jid)?.channels[channel]?.state;
  /** Whether the alert's escalation for everyone is over (no step pending or running). */
  const escalationOver = async (id: string) => {
    const key = (k: string) => `${gw.keyPrefix}a:{notify}:${k}`;
    const pending = [
      ...(await redis.zrange(key("timers"), "0", "-1")),
      ...(await redis.zrange(key("running"), "0", "-1")),
    ];
    return !pending.some((m) => m.includes(id));
  };
  const contact = (name: string, fields: Record<string, string>) =>
    redis.hset(`${gw.keyPrefix}a:{notify}:contact:${jidOf(name)}`, fields);
  const alertMessage = (el: Element, id: string) => el.name === "message" && el.attrs.id === `alert-${id}`;

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "alerts");
    tag = domain.split(".")[0]!;
    redis = new Redis(bed.redis!.url);
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TWILIO_TOKEN, numbers: [FROM] });
    relay = await startRelay();
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        notify: {
          tokens: [
            { name: "Monitoring", tokenEnv: "TEST_ALERT_TOKEN", recipients: [peer.host], groups: ["oncall"] },
            { name: "other", tokenEnv: "TEST_OTHER_TOKEN", recipients: [`nobody@${peer.host}`] },
          ],
          policies: {
            default: {
              steps: [
                { channel: "xmpp", waitSeconds: 2 },
                { channel: "sms", waitSeconds: 2 },
                { channel: "email" },
              ],
            },
            // XMPP waits long: only knowing the user is offline moves on to SMS soon.
            slow: { steps: [{ channel: "xmpp", waitSeconds: 3600 }, { channel: "sms" }] },
            seen: {
              steps: [{ channel: "xmpp", waitSeconds: 3600, until: "acknowledged" }],
              displayedIsAck: true,
            },
          },
          twilio: {
            accountSid: ACCOUNT,
            authTokenEnv: "TEST_NOTIFY_TWILIO",
            apiBaseUrl: fake.url,
            timeoutSeconds: 5,
            from: FROM,
            messagesPerSecond: 10,
          },
          email: {
            relay: { host: "127.0.0.1", port: relay.port, starttls: false },
            from: "alerts@example.org",
          },
          limits: { maxTextChars: 500, maxRecipients: 5 },
          timers: { pollMs: 100, claimLeaseSeconds: 5 },
        },
      },
      env: { TEST_ALERT_TOKEN: API_TOKEN, TEST_OTHER_TOKEN: OTHER_TOKEN, TEST_NOTIFY_TWILIO: TWILIO_TOKEN },
    });
    api = `http://127.0.0.1:${gw.gateway.http!.port}`;
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
    await relay?.stop();
    redis?.disconnect();
  });

  it("delivers over XMPP from <source>@domain; a receipt ends the escalation, no SMS", async () => {
    const alice = await TestUser.login(peer, `alice-${tag}`);
    users.push(alice);
    await contact("alice", { phone: "+12025550411", phoneVerified: "1" });
    const res = await post({
      recipients: [alice.bare],
      title: "Disk full",
      text: "db1: /var at 99%",
      severity: "warning",
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const msg = await alice.waitFor((el) => alertMessage(el, id), 15_000);
    expect(msg.attrs.from).toBe(`monitoring@${domain}`);
    expect(msg.getChildText("body")).toContain("Disk full");
    expect(msg.getChild("request", RECEIPTS)).toBeDefined();
    await alice.send(
      xml("message", { to: msg.attrs.from }, xml("received", { xmlns: RECEIPTS, id: msg.attrs.id })),
    );
    await expect.poll(() => stateOf(id, alice.bare, "xmpp"), { timeout: 15_000 }).toBe("delivered");
    await expect.poll(() => escalationOver(id), { timeout: 30_000 }).toBe(true);
    expect(fake.sent().filter((m) => m.to === "+12025550411")).toHaveLength(0);
  });

  it("texts an offline user after the XMPP wait, the SMS shows delivered, then mails when nobody acknowledges", async () => {
    const name = "bob";
    await (await TestUser.login(peer, `${name}-${tag}`)).stop(); // the account exists; bob is offline
    await contact(name, {
      phone: "+12025550412",
      phoneVerified: "1",
      email: `bob@example.org`,
      emailVerified: "1",
    });
    const res = await post({
      recipients: [jidOf(name)],
      title: "API down",
      text: "5xx everywhere",
      severity: "warning",
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await expect
      .poll(() => fake.sent().filter((m) => m.to === "+12025550412").length, { timeout: 30_000 })
      .toBe(1);
    expect(fake.sent().find((m) => m.to === "+12025550412")).toMatchObject({ from: FROM });
    await expect.poll(() => stateOf(id, jidOf(name), "sms"), { timeout: 30_000 }).toBe("delivered");
    await expect
      .poll(() => relay.mails.filter((m) => m.toString().includes("bob@example.org")).length, {
        timeout: 30_000,
      })
      .toBe(1);
    const mail = relay.mails.find((m) => m.toString().includes("bob@example.org"))!.toString();
    expect(mail).toContain("API down");
    await expect.poll(() => stateOf(id, jidOf(name), "email"), { timeout: 10_000 }).toBe("delivered");
    await expect.poll(() => escalationOver(id), { timeout: 10_000 }).toBe(true);
    expect(fake.sent().filter((m) => m.to === "+12025550412")).toHaveLength(1);
  });

  it(
    "never texts an unverified number; quiet hours hold back SMS and mail",
    { timeout: 90_000 },
    async () => {
      const hhmm = (offsetHours: number) =>
        new Date(Date.now() + offsetHours * 3600_000).toISOString().slice(11, 16);
      for (const name of ["lara", "mike"]) await (await TestUser.login(peer, `${name}-${tag}`)).stop();
      await contact("lara", {
        phone: "+12025550416",
        phoneVerified: "0",
        email: "lara@example.org",
        emailVerified: "1",
      });
      await contact("mike", {
        phone: "+12025550417",
        phoneVerified: "1",
        email: "mike@example.org",
        emailVerified: "1",
        quietStart: hhmm(-1),
        quietEnd: hhmm(1),
        tz: "UTC",
      });
      const res = await post({
        recipients: [jidOf("lara"), jidOf("mike")],
        title: "Quiet",
        text: "x",
        severity: "warning",
      });
      const { id } = (await res.json()) as { id: string };
      // Lara's number is not verified: her escalation goes from XMPP straight on to the mail.
      await expect
        .poll(() => relay.mails.filter((m) => m.toString().includes("lara@example.org")).length, {
          timeout: 30_000,
        })
        .toBe(1);
      await expect.poll(() => escalationOver(id), { timeout: 30_000 }).toBe(true);
      expect(fake.sent().filter((m) => m.to === "+12025550416" || m.to === "+12025550417")).toHaveLength(0);
      expect(relay.mails.filter((m) => m.toString().includes("mike@example.org"))).toHaveLength(0);
    },
  );

  it("texts at once a user who shares their presence with the alerts domain and is offline", async () => {
    const gina = await TestUser.login(peer, `gina-${tag}`);
    await contact("gina", { phone: "+12025550414", phoneVerified: "1" });
    // Gina adds the alerts service and lets it see her presence (her client asks her to approve).
    await gina.send(xml("presence", { to: domain, type: "subscribe" }));
    await gina.waitFor(
      (el) => el.name === "presence" && el.attrs.from === domain && el.attrs.type === "subscribe",
    );
    await gina.send(xml("presence", { to: domain, type: "subscribed" }));
    await gina.sync();
    await gina.stop();
    const key = `${gw.keyPrefix}a:{notify}:presence-known:${jidOf("gina")}`;
    await expect.poll(() => redis.exists(key), { timeout: 15_000 }).toBe(1);
    await expect
      .poll(() => redis.scard(`${gw.keyPrefix}a:{notify}:online:${jidOf("gina")}`), { timeout: 15_000 })
      .toBe(0);
    const res = await post({
      recipients: [jidOf("gina")],
      title: "Offline",
      text: "x",
      severity: "info",
      policy: "slow",
    });
    const { id } = (await res.json()) as { id: string };
    await expect
      .poll(() => fake.sent().filter((m) => m.to === "+12025550414").length, { timeout: 30_000 })
      .toBe(1);
    expect(await stateOf(id, jidOf("gina"), "xmpp")).toBe("sent");
  });

  it("an 'ack' reply stops the escalation, is confirmed, and shows in the API", async () => {
    const carol = await TestUser.login(peer, `carol-${tag}`);
    users.push(carol);
    await contact("carol", { phone: "+12025550413", phoneVerified: "1" });
    const res = await post({
      recipients: [carol.bare],
      title: "Queue backlog",
      text: "jobs waiting",
      severity: "info",
    });
    const { id } = (await res.json()) as { id: string };
    const msg = await carol.waitFor((el) => alertMessage(el, id), 15_000);
    await carol.send(
      xml("message", { to: msg.attrs.from, type: "chat", id: "ack-1" }, xml("body", {}, "ack")),
    );
    const confirmation = await carol.waitFor(
      (el) => (el.getChildText("body") ?? "").startsWith("Acknowledged"),
      15_000,
    );
    expect(confirmation.attrs.from).toBe(`monitoring@${domain}`);
    await expect
      .poll(async () => (await status(id)).recipients[0]?.acknowledged, { timeout: 10_000 })
      .toBeTruthy();
    expect(await stateOf(id, carol.bare, "xmpp")).toBe("acknowledged");
    await expect.poll(() => escalationOver(id), { timeout: 30_000 }).toBe(true);
    expect(fake.sent().filter((m) => m.to === "+12025550413")).toHaveLength(0);
  });

  it("an XEP-0333 displayed marker acknowledges when the policy says so", async () => {
    const jane = await TestUser.login(peer, `jane-${tag}`);
    users.push(jane);
    const res = await post({
      recipients: [jane.bare],
      title: "Read me",
      text: "x",
      severity: "info",
      policy: "seen",
    });
    const { id } = (await res.json()) as { id: string };
    const msg = await jane.waitFor((el) => alertMessage(el, id), 15_000);
    expect(msg.getChild("markable", "urn:xmpp:chat-markers:0")).toBeDefined();
    await jane.send(
      xml(
        "message",
        { to: msg.attrs.from },
        xml("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: msg.attrs.id }),
      ),
    );
    await jane.waitFor((el) => (el.getChildText("body") ?? "").startsWith("Acknowledged"), 15_000);
    expect((await status(id)).recipients[0]?.acknowledged).toMatchObject({ via: "displayed" });
  });

  it("the ad-hoc command 'Acknowledge alerts' acknowledges; the metrics count it", async () => {
    const hank = await TestUser.login(peer, `hank-${tag}`);
    users.push(hank);
    const res = await post({
      recipients: [hank.bare],
      title: "Cert expiry",
      text: "in 3 days",
      severity: "info",
    });
    const { id } = (await res.json()) as { id: string };
    await hank.waitFor((el) => alertMessage(el, id), 15_000);
    const done = await runCommand(hank, domain, "notify-ack", { alert: id });
    expect(done.getChild("command")?.getChildText("note")).toContain("1 alert(s) acknowledged");
    await expect
      .poll(async () => (await status(id)).recipients[0]?.acknowledged, { timeout: 10_000 })
      .toMatchObject({
        via: "command",
      });
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(metrics).toMatch(/xgw_notify_acked_total\{channel="xmpp"\} [1-9]/);
    expect(metrics).toMatch(/xgw_notify_alerts_received_total\{source="monitoring",severity="info"\} [1-9]/);
    expect(metrics).toContain("xgw_notify_time_to_ack_seconds_bucket");
  });

  it("a critical alert goes out on every channel at once; a group reaches its members", async () => {
    await (await TestUser.login(peer, `ivan-${tag}`)).stop(); // an account, offline
    await contact("ivan", { phone: "+12025550415", phoneVerified: "1" });
    await redis.rpush(`${gw.keyPrefix}a:{notify}:group:oncall`, jidOf("ivan"));
    const res = await post({
      recipients: ["oncall"],
      title: "Site down",
      text: "all regions",
      severity: "critical",
      policy: "slow",
    });
    expect(res.status).toBe(202);
    const { id, recipients } = (await res.json()) as { id: string; recipients: string[] };
    expect(recipients).toEqual([jidOf("ivan")]);
    // The slow policy waits an hour on XMPP: only "all at once" texts now.
    await expect
      .poll(() => fake.sent().filter((m) => m.to === "+12025550415").length, { timeout: 30_000 })
      .toBe(1);
    expect(fake.sent().find((m) => m.to === "+12025550415")?.body).toContain("CRITICAL");
    expect(await stateOf(id, jidOf("ivan"), "xmpp")).toBe("sent");
  });

  it("a receipt or marker for an alert that is not the user's changes nothing", async () => {
    const kate = await TestUser.login(peer, `kate-${tag}`);
    users.push(kate);
    const res = await post({
      recipients: [jidOf("alice")],
      title: "Not Kate's",
      text: "x",
      severity: "info",
    });
    const { id } = (await res.json()) as { id: string };
    const forged = ["0123456789abcdef", id];
    for (const target of forged) {
      await kate.send(
        xml(
          "message",
          { to: `monitoring@${domain}` },
          xml("received", { xmlns: RECEIPTS, id: `alert-${target}` }),
        ),
      );
      await kate.send(
        xml(
          "message",
          { to: `monitoring@${domain}` },
          xml("displayed", { xmlns: "urn:xmpp:chat-markers:0", id: `alert-${target}` }),
        ),
      );
    }
    await kate.sync();
    await gw.gateway.services.get("notify")!.ctx.link.ping();
    await kate.sync();
    expect(await redis.exists(`${gw.keyPrefix}a:{notify}:state:0123456789abcdef`)).toBe(0);
    const fields = await redis.hkeys(`${gw.keyPrefix}a:{notify}:state:${id}`);
    expect(fields.filter((f) => f.startsWith(kate.bare))).toEqual([]);
  });

  it("answers a replay with the same Idempotency-Key with the first answer, byte for byte, and sends once", async () => {
    const body = { recipients: [jidOf("dave")], title: "Replay", text: "once", severity: "info" };
    const first = await post(body, { "idempotency-key": "k-1" });
    const second = await post(body, { "idempotency-key": "k-1" });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(await second.text()).toBe(await first.text());
  });

  it.each<[string, () => Promise<Response>, number, string]>([
    [
      "unknown token",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x", severity: "info" }, {}, "nope"),
      401,
      "unauthorized",
    ],
    [
      "recipient the token may not reach",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x", severity: "info" }, {}, OTHER_TOKEN),
      403,
      "may not alert",
    ],
    [
      "group the token may not reach",
      () => post({ recipients: ["admins"], title: "t", text: "x", severity: "info" }),
      403,
      "admins",
    ],
    ["malformed JSON", () => post("{not json"), 400, "invalid"],
    [
      "unknown field",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x", severity: "info", colour: "red" }),
      400,
      "colour",
    ],
    [
      "bad severity",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x", severity: "huge" }),
      400,
      "severity",
    ],
    [
      "bad recipient",
      () => post({ recipients: [""], title: "t", text: "x", severity: "info" }),
      400,
      "recipients.0",
    ],
    [
      "oversize text",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x".repeat(501), severity: "info" }),
      413,
      "maxTextChars",
    ],
    [
      "too many recipients",
      () =>
        post({
          recipients: [1, 2, 3, 4, 5, 6].map((n) => jidOf(`r${n}`)),
          title: "t",
          text: "x",
          severity: "info",
        }),
      413,
      "maxRecipients",
    ],
    [
      "unknown policy",
      () => post({ recipients: [jidOf("x")], title: "t", text: "x", severity: "info", policy: "nope" }),
      400,
      "policy",
    ],
  ])("%s is refused with its status, nothing stored", async (_what, request, code, mention) => {
    const before = await redis.keys(`${gw.keyPrefix}a:{notify}:alert:*`);
    const res = await request();
    expect(res.status).toBe(code);
    expect(await res.text()).toContain(mention);
    expect(await redis.keys(`${gw.keyPrefix}a:{notify}:alert:*`)).toHaveLength(before.length);
  });

  it("serves an OpenAPI 3.1 document of the API", async () => {
    const res = await fetch(`${api}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/api/v1/alerts", "/api/v1/alerts/{id}", "/api/v1/alertmanager"]),
    );
  });
});

describe("alerts: a gateway killed during an escalation", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  });

  it("after a SIGKILL while the SMS was on its way, the SMS is not sent again and the next step (email) happens once", async () => {
    const bed = sharedBed();
    const peer = bed.prosody!;
    const slot = await takeSlot(bed);
    const tag = slotDomain(slot, "alerts").split(".")[0]!;
    const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TWILIO_TOKEN, numbers: [FROM] });
    cleanup.push(() => fake.stop());
    const relay = await startRelay();
    cleanup.push(() => relay.stop());
    const redis = new Redis(bed.redis!.url);
    cleanup.push(() => Promise.resolve(redis.disconnect()));
    const user = `frank-${tag}@${peer.host}`;
    await (await TestUser.login(peer, `frank-${tag}`)).stop(); // exists, offline
    const options = {
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: `alerts-crash-${slot}:`,
      adapters: {
        notify: {
          tokens: [{ name: "cron", tokenEnv: "TEST_ALERT_TOKEN", recipients: [peer.host] }],
          policies: {
            default: {
              steps: [
                { channel: "xmpp", waitSeconds: 1 },
                { channel: "sms", waitSeconds: 1 },
                { channel: "email" },
              ],
            },
          },
          twilio: {
            accountSid: ACCOUNT,
            authTokenEnv: "TEST_NOTIFY_TWILIO",
            apiBaseUrl: fake.url,
            from: FROM,
          },
          email: {
            relay: { host: "127.0.0.1", port: relay.port, starttls: false },
            from: "alerts@example.org",
          },
          timers: { pollMs: 100, claimLeaseSeconds: 2 },
        },
      },
    };
    const env = { TEST_ALERT_TOKEN: API_TOKEN, TEST_NOTIFY_TWILIO: TWILIO_TOKEN };
    await redis.hset(`alerts-crash-${slot}:a:{notify}:contact:${user}`, {
      phone: "+12025550420",
      phoneVerified: "1",
      email: "frank@example.org",
      emailVerified: "1",
    });
    const dir = await mkdtemp(path.join(tmpdir(), "gw-alerts-crash-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const first = await spawnGateway({
      dir,
      name: "first",
      config: testConfig(options),
      env: { TEST_ECHO_SECRET: TEST_SECRET, ...env },
    });
    cleanup.push(() => first.kill("SIGKILL"));
    await first.waitLog("component stream online");

    // Twilio takes the SMS and never answers: the gateway is killed while it waits.
    fake.hang(1);
    const res = await fetch(`http://127.0.0.1:${first.httpPort}/api/v1/alerts`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        recipients: [user],
        title: "Backup failed",
        text: "nightly job",
        severity: "warning",
      }),
    });
    expect(res.status).toBe(202);
    await expect.poll(() => fake.requests, { timeout: 30_000 }).toBe(1);
    await first.kill("SIGKILL");

    const second = await startTestGateway({ ...options, env });
    cleanup.push(() => second.stop());
    await expect
      .poll(() => relay.mails.filter((m) => m.toString().includes("frank@example.org")).length, {
        timeout: 30_000,
      })
      .toBe(1);
    await expect
      .poll(
        async () =>
          (await redis.zcard(`alerts-crash-${slot}:a:{notify}:timers`)) +
          (await redis.zcard(`alerts-crash-${slot}:a:{notify}:running`)),
        { timeout: 30_000 },
      )
      .toBe(0);
    expect(fake.sent().filter((m) => m.to === "+12025550420")).toHaveLength(1);
    expect(relay.mails.filter((m) => m.toString().includes("frank@example.org"))).toHaveLength(1);
  });
});

describe("alerts: one alert to many recipients is paced per channel", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let gw: TestGateway;
  let redis: Redis;
  const TOKEN = "alerts-pace-token-0123456789";
  const RECIPIENTS = 20;
  let tag: string;

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    tag = slotDomain(slot, "alerts").split(".")[0]!;
    redis = new Redis(bed.redis!.url);
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        notify: {
          tokens: [{ name: "Monitoring", tokenEnv: "TEST_PACE_TOKEN", recipients: [peer.host] }],
          policies: { default: { steps: [{ channel: "xmpp", waitSeconds: 3600 }] } },
          limits: { maxRecipients: RECIPIENTS },
          rates: { xmppPerSecond: 2 },
          timers: { pollMs: 100, claimLeaseSeconds: 30 },
        },
      },
      env: { TEST_PACE_TOKEN: TOKEN },
    });
  });

  afterAll(async () => {
    await gw?.stop();
    redis?.disconnect();
  });

  it("a 20-recipient alert goes out over XMPP a few at a time, every one of them in the end", async () => {
    const recipients = Array.from({ length: RECIPIENTS }, (_, i) => `pace${i}-${tag}@${peer.host}`);
    const res = await fetch(`http://127.0.0.1:${gw.gateway.http!.port}/api/v1/alerts`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ recipients, title: "Disk full", text: "on every host", severity: "warning" }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const sentCount = async () =>
      (await redis.hkeys(`${gw.keyPrefix}a:{notify}:state:${id}`)).filter((f) => f.endsWith(" xmpp sent"))
        .length;
    // Every count the store showed on the way: paced, some recipients have it while others still wait.
    const seen = new Set<number>();
    const deadline = Date.now() + 120_000;
    for (;;) {
      const n = await sentCount();
      seen.add(n);
      if (n === RECIPIENTS || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await sentCount()).toBe(RECIPIENTS);
    expect([...seen].filter((n) => n > 0 && n < RECIPIENTS).length).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    expect(metrics).toMatch(/xgw_notify_rate_held_total\{channel="xmpp"\} [1-9]/);
    expect(metrics).toMatch(/xgw_notify_sent_total\{channel="xmpp"\} 20\b/);
  }, 180_000);

  it("an alert to 100,000 recipients is stored whole, each recipient once, every first step due", async () => {
    const prefix = `${gw.keyPrefix}big:`;
    const key = new Keys(prefix).adapterKey("notify");
    const store = new AlertStore(redis, key, 600);
    const recipients = Array.from({ length: 100_000 }, (_, i) => `big${i}@${peer.host}`);
    const result = await store.create(
      {
        id: "big1",
        source: "monitoring",
        token: "Monitoring",
        title: "Everyone",
        text: "x",
        severity: "info",
        policy: "default",
        createdAt: new Date().toISOString(),
        status: "firing",
        recipients,
      },
      { idempotencyTtl: 60, answer: "{}" },
    );
    expect(result).toEqual({ stored: true });
    expect(await redis.zcard(key("timers"))).toBe(100_000);
    expect(await redis.scard(key("recipients", "big1"))).toBe(100_000);
    expect(await store.isRecipient("big1", `big99999@${peer.host}`)).toBe(true);
    expect((await store.head("big1"))?.title).toBe("Everyone");
    expect(await store.recent(5)).toEqual(["big1"]);
    const stale = await redis.keys(`${prefix}*`);
    for (let i = 0; i < stale.length; i += 1000) await redis.del(...stale.slice(i, i + 1000));
  }, 120_000);

  it("an alert whose creation stopped before its commit is seen by no one and sends nothing", async () => {
    const key = new Keys(gw.keyPrefix).adapterKey("notify");
    const jid = `half-${tag}@${peer.host}`;
    // What a creator that died after its first chunk leaves behind.
    await redis.hset(key("alert", "half1"), {
      pending: "1",
      v: "1",
      id: "half1",
      source: "monitoring",
      token: "Monitoring",
      title: "Half",
      text: "x",
      severity: "info",
      policy: "default",
      createdAt: new Date().toISOString(),
      status: "firing",
      recipients: JSON.stringify([jid]),
    });
    await redis.sadd(key("recipients", "half1"), jid);
    await redis.zadd(key("staged", "half1"), Date.now(), JSON.stringify(["half1", jid, 0]));
    const res = await fetch(`http://127.0.0.1:${gw.gateway.http!.port}/api/v1/alerts/half1`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(404);
    const store = new AlertStore(redis, key, 600);
    expect(await store.head("half1")).toBeUndefined();
    expect(await store.get("half1")).toBeUndefined();
    expect(await store.recent(100)).not.toContain("half1");
    expect((await redis.zrange(key("timers"), "0", "-1")).some((m) => m.includes("half1"))).toBe(false);
  });
});
