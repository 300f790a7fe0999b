/**
 * A gateway killed (SIGKILL) while a message is on its way to the network: the message may have reached
 * Twilio, so it must not be sent again, and the sender must not be left believing it arrived. After the
 * restart the sender gets an error on that very message, and Twilio saw one request.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, expect, it } from "vitest";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { startTwilioFake } from "../twilio/server.js";
import { errorOf, TestUser, xml } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway } from "../support/process.js";

const ACCOUNT = "AC" + "4".repeat(32);
const TOKEN = "crash-token";
const OWN = "+12025550500";
const CONTACT = "+12025550511";
const cleanup: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => undefined);
});

it("tells the sender a message may not have arrived when the gateway died sending it, and never repeats it", async () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const slot = await takeSlot(bed);
  const domain = slotDomain(slot, "sms");
  const fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
  cleanup.push(() => fake.stop());
  const userName = `crash-${slot}`;
  const options = {
    peer,
    redisUrl: bed.redis!.url,
    slot,
    keyPrefix: `crash-${slot}:`,
    adapters: {
      sms: {
        twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url },
        numbers: { dedicated: { [OWN]: `${userName}@${peer.host}` } },
      },
    },
  };
  const config = testConfig(options);
  const dir = await mkdtemp(path.join(tmpdir(), "gw-crash-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const first = await spawnGateway({
    dir,
    name: "first",
    config,
    env: { TEST_ECHO_SECRET: TEST_SECRET, TOKEN },
  });
  cleanup.push(() => first.kill("SIGKILL"));
  await first.waitLog("component stream online");

  const user = await TestUser.login(peer, userName);
  cleanup.push(() => user.stop());
  const form = xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    xml("field", { var: "mode" }, xml("value", {}, "dedicated")),
  );
  expect((await user.iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form))).attrs.type).toBe(
    "result",
  );

  // Twilio takes the request and never answers: the gateway is killed while it waits.
  fake.hang(1);
  await user.send(
    xml(
      "message",
      { to: `${CONTACT}@${domain}`, id: "cut-short", type: "chat" },
      xml("body", {}, "on my way"),
    ),
  );
  await expect.poll(() => fake.requests, { timeout: 10_000 }).toBe(1);
  await first.kill("SIGKILL");

  const second = await startTestGateway({ ...options, env: { TOKEN } });
  cleanup.push(() => second.stop());
  const bounced = await user.waitFor(
    (el) => el.name === "message" && el.attrs.type === "error" && el.attrs.id === "cut-short",
  );
  const err = errorOf(bounced);
  expect(err.condition).toBe("remote-server-timeout");
  expect(err.text).toContain("may or may not have arrived");
  expect(bounced.attrs.from).toBe(`${CONTACT}@${domain}`);

  // The client resending the same stanza (a stream resumption) is still not sent twice.
  await user.send(
    xml(
      "message",
      { to: `${CONTACT}@${domain}`, id: "cut-short", type: "chat" },
      xml("body", {}, "on my way"),
    ),
  );
  // A later message goes through, so the resend had its chance to be (wrongly) sent before it.
  await user.send(
    xml("message", { to: `${CONTACT}@${domain}`, id: "after", type: "chat" }, xml("body", {}, "here")),
  );
  await expect.poll(() => fake.sent().length, { timeout: 10_000 }).toBe(1);
  expect(fake.sent()[0]!.body).toBe("here");
  expect(fake.requests).toBe(2);
});
