/**
 * A real Prometheus Alertmanager whose webhook receiver points at the gateway: a firing group reaches the
 * on-call person over XMPP from <receiver>@alerts…, a repeat of the same group state sends nothing new, and
 * the resolved notification tells them (a "Resolved: …" message and an XEP-0308 correction).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { TestUser, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { startAlertmanager, type TestAlertmanager } from "../support/alertmanager.js";

const TOKEN = "alertmanager-token-0123456789";
const CORRECT = "urn:xmpp:message-correct:0";

describe("Alertmanager receiver", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let gw: TestGateway;
  let am: TestAlertmanager;
  let domain: string;
  let api: string;
  let erin: TestUser;

  const webhook = (payload: unknown, token = TOKEN, query = "") =>
    fetch(`${api}/api/v1/alertmanager${query}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(payload),
    });
  const bodyOf = (el: Element) => el.getChildText("body") ?? "";

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "alerts");
    const tag = domain.split(".")[0]!;
    erin = await TestUser.login(peer, `erin-${tag}`);
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        notify: {
          tokens: [
            {
              name: "prometheus",
              tokenEnv: "TEST_AM_TOKEN",
              recipients: [erin.bare],
              defaultRecipients: [erin.bare],
            },
          ],
          policies: { default: { steps: [{ channel: "xmpp", waitSeconds: 60 }] } },
          timers: { pollMs: 100, claimLeaseSeconds: 5 },
        },
      },
      env: { TEST_AM_TOKEN: TOKEN },
    });
    api = `http://127.0.0.1:${gw.gateway.http!.port}`;
    am = await startAlertmanager({
      receiver: "ops-oncall",
      webhookUrl: `${api}/api/v1/alertmanager`,
      token: TOKEN,
    });
  });

  afterAll(async () => {
    await erin?.stop();
    await am?.stop();
    await gw?.stop();
  });

  it("a firing group reaches the person; the resolved notification updates the message", async () => {
    const startsAt = new Date().toISOString();
    const alert = {
      labels: { alertname: "HighLatency", severity: "warning", instance: "web1" },
      annotations: { summary: "p99 latency above 2 s" },
      startsAt,
    };
    await am.push([alert]);
    const firing = await erin.waitFor((el) => bodyOf(el).includes("HighLatency"), 30_000);
    expect(firing.attrs.from).toBe(`ops-oncall@${domain}`);
    expect(bodyOf(firing)).toContain("p99 latency above 2 s");

    await am.push([{ ...alert, endsAt: new Date().toISOString() }]);
    const resolved = await erin.waitFor((el) => bodyOf(el) === "Resolved: HighLatency", 30_000);
    expect(resolved.attrs.from).toBe(`ops-oncall@${domain}`);
    const correction = erin.received.find(
      (el) => el.getChild("replace", CORRECT)?.attrs.id === firing.attrs.id,
    );
    expect(correction && bodyOf(correction)).toContain("[RESOLVED]");
    expect(
      erin.received.filter((el) => bodyOf(el).includes("p99 latency") && !el.getChild("replace", CORRECT)),
    ).toHaveLength(1);
  });

  it("a repeat of the same group state is taken once", async () => {
    const payload = {
      version: "4",
      groupKey: '{}:{alertname="DiskFull"}',
      status: "firing",
      receiver: "ops-oncall",
      groupLabels: { alertname: "DiskFull" },
      commonLabels: { alertname: "DiskFull", severity: "warning" },
      commonAnnotations: {},
      externalURL: am.url,
      truncatedAlerts: 0,
      alerts: [
        {
          status: "firing",
          labels: { alertname: "DiskFull", instance: "db1" },
          annotations: { summary: "/var at 99%" },
          startsAt: new Date().toISOString(),
          endsAt: "0001-01-01T00:00:00Z",
          generatorURL: "",
          fingerprint: "abc123",
        },
      ],
    };
    const first = await webhook(payload);
    expect(first.status).toBe(200);
    const second = await webhook(payload);
    expect(second.status).toBe(200);
    const a = (await first.json()) as { id: string };
    const b = (await second.json()) as { id: string; status: string };
    expect(b).toMatchObject({ id: a.id, status: "duplicate" });
    await erin.waitFor((el) => bodyOf(el).includes("/var at 99%"), 15_000);
    await erin.sync();
    await gw.gateway.services.get("notify")!.ctx.link.ping();
    await erin.sync();
    expect(erin.received.filter((el) => bodyOf(el).includes("/var at 99%"))).toHaveLength(1);
  });

  it("an alert joining an open group corrects the message instead of sending another", async () => {
    const alert = (instance: string) => ({
      status: "firing",
      labels: { alertname: "NodeDown", instance },
      annotations: { summary: `${instance} unreachable` },
      startsAt: new Date().toISOString(),
      fingerprint: instance,
    });
    const payload = (alerts: unknown[]) => ({
      version: "4",
      groupKey: '{}:{alertname="NodeDown"}',
      status: "firing",
      receiver: "ops-oncall",
      groupLabels: { alertname: "NodeDown" },
      commonLabels: { alertname: "NodeDown" },
      commonAnnotations: {},
      alerts,
    });
    expect((await webhook(payload([alert("node1")]))).status).toBe(200);
    const first = await erin.waitFor((el) => bodyOf(el).includes("node1 unreachable"), 15_000);
    expect((await webhook(payload([alert("node1"), alert("node2")]))).status).toBe(200);
    const fix = await erin.waitFor((el) => bodyOf(el).includes("node2 unreachable"), 15_000);
    expect(fix.getChild("replace", CORRECT)?.attrs.id).toBe(first.attrs.id);
    expect(bodyOf(fix)).toContain("NodeDown (2 alerts)");
  });

  it.each<[string, () => Promise<Response>, number]>([
    [
      "another payload version",
      () => webhook({ version: "3", groupKey: "x", status: "firing", receiver: "r", alerts: [] }),
      400,
    ],
    ["an unknown token", () => webhook({ version: "4" }, "wrong-token"), 401],
    [
      "a recipient the token may not reach",
      () =>
        webhook(
          { version: "4", groupKey: "g", status: "firing", receiver: "r", alerts: [] },
          TOKEN,
          `?to=mallory@${peer.host}`,
        ),
      403,
    ],
  ])("%s is refused with its status", async (_what, request, code) => {
    expect((await request()).status).toBe(code);
  });
});
