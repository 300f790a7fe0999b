/**
 * SMS webhooks in deployment conditions: a gateway restart between sending an SMS and the carrier's delivery
 * report (what the report needs lives in Redis), and a gateway behind a reverse proxy (signatures are made for
 * the public URL, not the one the request arrives at).
 */
import { spawn } from "node:child_process";
import { afterAll, expect, it } from "vitest";
import { REDIS_CLI } from "../bed/redis-cluster.js";
import { startTwilioFake } from "../twilio/server.js";
import type { MessageStatus } from "../twilio/messages.js";
import { signedRequest, statusParams } from "../twilio/webhooks.js";
import { slotDomain } from "../slots.js";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const ACCOUNT = "AC" + "3".repeat(32);
const TOKEN = "restart-token";
const OWN = "+12025550400";
const CONTACT = "+12025550411";
const cleanup: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

it("delivers the receipt when the delivery report arrives after a gateway restart", async () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const slot = await takeSlot(bed);
  const domain = slotDomain(slot, "sms");
  const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  cleanup.push(() => fake.stop());
  const userName = `frank-sms-${slot}`;
  const start = (): Promise<TestGateway> =>
    startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: `sms-restart-${slot}:`,
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url },
          numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
        },
      },
      env: { TOKEN },
    });

  const first = await start();
  const frank = await TestUser.login(peer, userName);
  cleanup.push(() => frank.stop());
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "mode" }, xml("value", {}, "dedicated")),
  );
  expect(
    (await frank.iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form))).attrs.type,
  ).toBe("result");
  // The carrier reports "sent" now and "delivered" only after the restart.
  fake.script(CONTACT, ["sent"]);
  await frank.send(
    xml(
      "message",
      { to: `${CONTACT}@${domain}`, id: "before-restart", type: "chat" },
      xml("body", {}, "see you"),
      xml("request", { xmlns: "urn:xmpp:receipts" }),
    ),
  );
  await expect.poll(() => fake.sent().length, { timeout: 10_000 }).toBe(1);
  await fake.idle();
  await first.stop();

  const second = await start();
  cleanup.push(() => second.stop());
  const sid = fake.sent()[0]!.sid;
  const url = `http://127.0.0.1:${second.gateway.http!.port}/sms/twilio/status`;
  // What Redis is asked about this SMS from here on (MONITOR): a report before the final one changes nothing the
  // user sees, and costs no trip to the store.
  const monitor = spawn(REDIS_CLI, ["-u", bed.redis!.url, "monitor"]);
  cleanup.push(() => Promise.resolve(void monitor.kill()));
  const asked: string[] = [];
  monitor.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) if (line.includes(sid)) asked.push(line);
  });
  await new Promise((resolve) => monitor.stdout.once("data", resolve)); // "OK": monitoring
  const report = (status: MessageStatus) =>
    statusParams({
      accountSid: ACCOUNT,
      messageSid: sid,
      from: OWN,
      to: CONTACT,
      status,
      errorCode: null,
      messagingServiceSid: null,
    });
  expect((await fake.replay(signedRequest(TOKEN, url, report("sent")))).status).toBe(200);
  const params = statusParams({
    accountSid: ACCOUNT,
    messageSid: sid,
    from: OWN,
    to: CONTACT,
    status: "delivered",
    errorCode: null,
    messagingServiceSid: null,
  });
  expect((await fake.replay(signedRequest(TOKEN, url, params))).status).toBe(200);
  const receipt = await frank.waitFor(
    (el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "before-restart",
  );
  expect(receipt.attrs.from).toBe(`${CONTACT}@${domain}`);
  // The final report was looked up (the monitor works), the one before it was not.
  await expect.poll(() => asked.some((line) => line.includes('"delivered"')), { timeout: 10_000 }).toBe(true);
  expect(asked.filter((line) => line.includes('"sent"'))).toEqual([]);
});

it("checks webhook signatures against the public URL when behind a reverse proxy", async () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const slot = await takeSlot(bed);
  const publicUrl = "https://sms-gw.example.org/gateway";
  const userName = `gina-sms-${slot}`;
  const gw = await startTestGateway({
    peer,
    redisUrl: bed.redis!.url,
    slot,
    http: { publicUrl },
    adapters: {
      sms: {
        twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: "http://127.0.0.1:9" },
        numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
      },
    },
    env: { TOKEN },
  });
  cleanup.push(() => gw.stop());
  const gina = await TestUser.login(peer, userName);
  cleanup.push(() => gina.stop());
  const params = {
    AccountSid: ACCOUNT,
    MessageSid: "SM" + "4".repeat(32),
    From: CONTACT,
    To: OWN,
    Body: "through the proxy",
    NumMedia: "0",
  };
  // What the proxy forwards: Twilio signed the public URL; the request reaches the gateway on loopback.
  const post = (signedFor: string) => {
    const request = signedRequest(TOKEN, signedFor, params);
    return fetch(`http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`, {
      method: "POST",
      headers: request.headers,
      body: request.body,
    });
  };
  const local = await post(`http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`);
  expect(local.status).toBe(403);
  const proxied = await post(`${publicUrl}/sms/twilio/sms`);
  expect(proxied.status).toBe(200);
  await gina.waitFor((el) => el.getChildText("body") === "through the proxy");
  expect(gina.received.filter((el) => el.getChildText("body") === "through the proxy")).toHaveLength(1);
});
