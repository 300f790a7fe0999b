/**
 * /metrics counts what users did: messages by adapter, direction and outcome, deliveries with their
 * latency, SMS segments, rate-limit refusals, forged webhooks, and the inbound queue while it waits.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { slotDomain } from "../slots.js";
import { registration, TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const ACCOUNT = "AC" + "3".repeat(32);
const TOKEN = "metrics-twilio-token";
const POOL = ["+12025550501"];

const chat = (to: string, id: string, body: string) =>
  xml("message", { to, id, type: "chat" }, xml("body", {}, body));

describe("Prometheus metrics", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let gw: TestGateway;
  let echo: string;
  let sms: string;
  let base: string;
  let publicBase: string;
  const users: TestUser[] = [];

  async function scrape(): Promise<string> {
    const answer = await fetch(`${base}/metrics`);
    expect(answer.headers.get("content-type")).toContain("text/plain");
    return answer.text();
  }
  /** The value of one sample, 0 when absent. */
  async function sample(name: string, labels: string): Promise<number> {
    const text = await scrape();
    const escaped = labels.replace(/[{}+.]/g, "\\$&");
    return Number(new RegExp(`^${name}${escaped} (\\S+)$`, "m").exec(text)?.[1] ?? "0");
  }

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    echo = slotDomain(slot, "echo");
    sms = slotDomain(slot, "sms");
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: POOL });
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TEST_TWILIO_TOKEN", apiBaseUrl: fake.url },
          numbers: { pool: POOL },
          limits: { messagesPerHour: 2 },
        },
      },
      env: { TEST_TWILIO_TOKEN: TOKEN },
    });
    base = `http://127.0.0.1:${gw.gateway.http!.privatePort}`;
    publicBase = `http://127.0.0.1:${gw.gateway.http!.port}`;
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
  });

  it("counts each echo message out and in, and each delivery with its latency", async () => {
    const erin = await TestUser.login(peer, `erin-metrics-${echo.split(".")[0]}`);
    users.push(erin);
    expect((await erin.iq("set", echo, registration({ nick: "erin" }))).attrs.type).toBe("result");
    const sent = 5;
    for (let i = 0; i < sent; i++) await erin.send(chat(`bot@${echo}`, `m-${i}`, `hello ${i}`));
    for (let i = 0; i < sent; i++) await erin.waitFor((el) => el.getChildText("body") === `erin: hello ${i}`);

    expect(await sample("xgw_messages_total", `{adapter="echo",direction="out",outcome="delivered"}`)).toBe(
      sent,
    );
    expect(await sample("xgw_messages_total", `{adapter="echo",direction="in",outcome="stored"}`)).toBe(sent);
    // The latency is observed once the server confirmed the batch (barrier ping), just after the user saw it.
    await expect
      .poll(() => sample("xgw_delivery_latency_seconds_count", `{adapter="echo"}`), { timeout: 10_000 })
      .toBe(sent);
    expect(await sample("xgw_delivery_latency_seconds_bucket", `{le="+Inf",adapter="echo"}`)).toBe(sent);
    expect(await sample("xgw_inbox_depth", `{adapter="echo"}`)).toBe(0);
    expect(await sample("xgw_inbox_oldest_age_seconds", `{adapter="echo"}`)).toBe(0);
    expect(await sample("xgw_component_up", `{adapter="echo",domain="${echo}"}`)).toBe(1);
  });

  it("counts SMS segments sent, rate-limit refusals and forged webhooks", async () => {
    const finn = await TestUser.login(peer, `finn-metrics-${sms.split(".")[0]}`);
    users.push(finn);
    expect((await finn.iq("set", sms, registration({ mode: "pool" }))).attrs.type).toBe("result");
    await finn.send(chat(`+12025550577@${sms}`, "s-1", "short"));
    await finn.send(chat(`+12025550577@${sms}`, "s-2", "x".repeat(200))); // 2 GSM-7 segments
    await expect.poll(() => fake.sent().length, { timeout: 10_000 }).toBe(2);
    await finn.send(chat(`+12025550577@${sms}`, "s-3", "one too many"));
    const refused = await finn.waitFor((el) => el.attrs.id === "s-3" && el.attrs.type === "error");
    expect(refused.getChild("error")?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas")).toContain(
      "this hour",
    );

    expect(await sample("xgw_sms_segments_sent_total", "")).toBe(3);
    expect(await sample("xgw_sms_rate_limit_refusals_total", `{limit="hour"}`)).toBe(1);
    expect(await sample("xgw_messages_total", `{adapter="sms",direction="out",outcome="accepted"}`)).toBe(2);
    expect(
      await sample("xgw_messages_total", `{adapter="sms",direction="out",outcome="policy-violation"}`),
    ).toBe(1);

    const webhook = `${publicBase}/sms/twilio/sms`;
    for (const body of ["forged 1", "forged 2"])
      expect(
        (
          await fake.sendInbound({
            from: "+12025550577",
            to: POOL[0]!,
            body,
            webhookUrl: webhook,
            forge: true,
          })
        ).status,
      ).toBe(403);
    expect(await sample("xgw_sms_webhook_signature_failures_total", `{path="/twilio/sms"}`)).toBe(2);

    const reply = await fake.sendInbound({
      from: "+12025550577",
      to: POOL[0]!,
      body: "real reply",
      webhookUrl: webhook,
    });
    expect(reply.status).toBe(200);
    await finn.waitFor((el) => el.getChildText("body") === "real reply");
    expect(await sample("xgw_messages_total", `{adapter="sms",direction="in",outcome="stored"}`)).toBe(1);
    await expect
      .poll(() => sample("xgw_delivery_latency_seconds_count", `{adapter="sms"}`), { timeout: 10_000 })
      .toBe(1);
  });

  it("shows inbound messages waiting and how old the oldest is while nothing delivers them", async () => {
    const service = gw.gateway.services.get("echo")!;
    await service.deliverer.stop();
    await service
      .adapterContext()
      .deliver({ kind: "message", to: `nobody@${peer.host}`, from: echo, id: "wait-1", body: "x" });
    expect(await sample("xgw_inbox_depth", `{adapter="echo"}`)).toBe(1);
    await expect
      .poll(() => sample("xgw_inbox_oldest_age_seconds", `{adapter="echo"}`), { timeout: 10_000 })
      .toBeGreaterThan(0.5);
  });
});
