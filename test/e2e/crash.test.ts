/**
 * A gateway killed (SIGKILL) while a message is on its way to the network: the message may have reached
 * Twilio, so it must not be sent again, and the sender must not be left believing it arrived. After the
 * restart the sender gets an error on that very message, and Twilio saw one request. Messages still queued
 * inside the gateway when it died never reached the network: their senders are told to send them again,
 * and a resend goes out once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, expect, it } from "vitest";
import { freePort } from "../bed/index.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { startTwilioFake } from "../twilio/server.js";
import { errorOf, registration, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway } from "../support/process.js";
import { smtpServer } from "../support/relay.js";

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
  // The hung request reached Twilio (one SMS); the resend is answered with the same error, never sent.
  await expect.poll(() => fake.sent().length, { timeout: 10_000 }).toBe(2);
  expect(fake.sent().map((m) => m.body)).toEqual(["on my way", "here"]);
  expect(fake.requests).toBe(2);
  const isError = (el: Element) => el.attrs.type === "error" && el.attrs.id === "cut-short";
  await expect.poll(() => user.received.filter(isError).length, { timeout: 10_000 }).toBe(2);
  expect(errorOf(user.received.filter(isError)[1]!)).toEqual(err);
});

it("tells the sender to send again the messages still queued in the gateway when it died, and only those", async () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const slot = await takeSlot(bed);
  const domain = slotDomain(slot, "mail");
  // A relay that takes the first mail and goes silent (the gateway dies waiting), then answers again.
  let silent = true;
  let dataCommands = 0;
  const relay = smtpServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    closeTimeout: 100,
    onData(stream, _session, callback) {
      dataCommands++;
      if (silent) return void stream.resume();
      stream.on("end", () => callback());
      stream.resume();
    },
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  cleanup.push(() => new Promise<void>((resolve) => relay.close(() => resolve())));
  const relayPort = (relay.server.address() as { port: number }).port;
  const keyPrefix = `crash-mail-${slot}:`;
  const email = (inboundPort: number) => ({
    mailDomain: "crash.example.org",
    relay: { host: "127.0.0.1", port: relayPort, starttls: false, timeoutSeconds: 60 },
    inbound: { port: inboundPort },
  });
  const options = { peer, redisUrl: bed.redis!.url, slot, keyPrefix };
  const dir = await mkdtemp(path.join(tmpdir(), "gw-crash-mail-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const first = await spawnGateway({
    dir,
    name: "first",
    config: testConfig({ ...options, adapters: { email: email(await freePort()) } }),
    env: { TEST_ECHO_SECRET: TEST_SECRET },
  });
  cleanup.push(() => first.kill("SIGKILL"));
  await first.waitLog("component stream online");

  const user = await TestUser.login(peer, `crash-mail-${slot}`);
  cleanup.push(() => user.stop());
  const reg = await user.iq("set", domain, registration({ alias: `crash-mail-${slot}` }));
  expect(reg.attrs.type, user.dump()).toBe("result");
  const contact = `friend\\40example.com@${domain}`;
  const send = (id: string) =>
    user.send(
      xml(
        "message",
        { to: contact, id, type: "chat" },
        xml("body", {}, `mail ${id}`),
        xml("request", { xmlns: "urn:xmpp:receipts" }),
      ),
    );

  // The first mail reaches the relay, which goes silent; the next two wait behind it (mails to one contact
  // leave in order), inside the gateway.
  await send("wire-1");
  await expect.poll(() => dataCommands, { timeout: 10_000 }).toBe(1);
  await send("queued-1");
  await send("queued-2");
  const redis = new Redis(bed.redis!.url);
  cleanup.push(() => Promise.resolve(redis.disconnect()));
  await expect.poll(() => redis.zcard(`${keyPrefix}outflight:{email}`), { timeout: 10_000 }).toBe(3);
  await first.kill("SIGKILL");
  silent = false;

  const second = await startTestGateway({ ...options, adapters: { email: email(await freePort()) } });
  cleanup.push(() => second.stop());
  const errorFor = (id: string) => (el: Element) => el.attrs.type === "error" && el.attrs.id === id;
  const onTheWire = errorOf(await user.waitFor(errorFor("wire-1"), 20_000));
  expect(onTheWire.condition).toBe("remote-server-timeout");
  expect(onTheWire.text).toContain("may or may not have arrived");
  for (const id of ["queued-1", "queued-2"]) {
    const queued = errorOf(await user.waitFor(errorFor(id), 20_000));
    expect(queued.text).toContain("it was not sent. Send it again.");
  }
  expect(dataCommands).toBe(1);

  // Sent again, the queued ones go out once each; the one on the wire is not sent again.
  await send("queued-1");
  await send("queued-2");
  await send("wire-1");
  for (const id of ["queued-1", "queued-2"])
    await user.waitFor((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === id, 20_000);
  await expect.poll(() => user.received.filter(errorFor("wire-1")).length, { timeout: 10_000 }).toBe(2);
  expect(dataCommands).toBe(3);
});
