/**
 * SMS through the Twilio-compatible test server, as users see it: text a number from XMPP, get the reply in
 * the same chat, receipts and failures, pooled numbers, limits, forged webhooks.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { OutboundLedger } from "../../src/store/idempotency.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { slotDomain } from "../slots.js";
import { errorOf, registration, TestUser, xml, type Element } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const ACCOUNT = "AC" + "1".repeat(32);
const TOKEN = "test-auth-token";
const OWN = "+12025550101"; // alice's dedicated number
const POOL = ["+12025550201", "+12025550202"];
const RECEIPTS = "urn:xmpp:receipts";
/** The media proxy's size cap in this test (config media.maxBytes). */
const MEDIA_CAP = 64 * 1024;

const chat = (to: string, id: string, body: string, receipt = false) =>
  xml(
    "message",
    { to, id, type: "chat" },
    xml("body", {}, body),
    receipt ? xml("request", { xmlns: RECEIPTS }) : null,
  );

describe("SMS through a Twilio-compatible API", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let gw: TestGateway;
  let domain: string;
  let webhook: string;
  const users: Record<string, TestUser> = {};

  async function user(name: string, mode: string) {
    const u = await TestUser.login(peer, `${name}-sms-${domain.split(".")[0]}`);
    users[name] = u;
    const reg = await u.iq("set", domain, registration({ mode }));
    expect(reg.attrs.type, u.dump()).toBe("result");
    return u;
  }

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "sms");
    fake = await startTwilioFake({
      accountSid: ACCOUNT,
      authToken: TOKEN,
      numbers: [OWN, ...POOL, "+12025550300"],
    });
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [`admin-sms-${slot}@${peer.host}`],
      adapters: {
        sms: {
          twilio: {
            accountSid: ACCOUNT,
            authTokenEnv: "TEST_TWILIO_TOKEN",
            apiBaseUrl: fake.url,
            timeoutSeconds: 2,
          },
          numbers: { dedicated: { [OWN]: `alice-sms-${domain.split(".")[0]}@${peer.host}` }, pool: POOL },
          allowedCountries: ["US", "CA"],
          limits: { messagesPerHour: 6 },
          media: { maxBytes: MEDIA_CAP, timeoutSeconds: 2 },
        },
      },
      env: { TEST_TWILIO_TOKEN: TOKEN },
    });
    webhook = `http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`;
    await user("alice", "dedicated");
  });

  afterAll(async () => {
    await Promise.all(Object.values(users).map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
  });

  it("texts a number from the user's own number and shows a receipt when the carrier confirms", async () => {
    const alice = users.alice!;
    await alice.send(chat(`+12025550199@${domain}`, "sms-1", "Your order is ready", true));
    const receipt = await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "sms-1");
    expect(receipt.attrs.from).toBe(`+12025550199@${domain}`);
    const sent = fake.sent().find((m) => m.body === "Your order is ready");
    expect(sent).toMatchObject({ from: OWN, to: "+12025550199" });
  });

  it("answers a resend of a delivered SMS with the receipt again, and sends nothing twice", async () => {
    const alice = users.alice!;
    const isReceipt = (el: Element) => el.getChild("received", RECEIPTS)?.attrs.id === "sms-1";
    await alice.waitFor(isReceipt);
    // The client resends the same stanza (e.g. after a stream resumption failed).
    await alice.send(chat(`+12025550199@${domain}`, "sms-1", "Your order is ready", true));
    await expect.poll(() => alice.received.filter(isReceipt).length, { timeout: 10_000 }).toBe(2);
    expect(alice.received.filter(isReceipt).at(-1)!.attrs.from).toBe(`+12025550199@${domain}`);
    expect(fake.sent().filter((m) => m.body === "Your order is ready")).toHaveLength(1);
  });

  it("delivers the customer's reply into the same chat, once, even when Twilio sends it twice", async () => {
    const alice = users.alice!;
    const answer = await fake.sendInbound({
      from: "+12025550199",
      to: OWN,
      body: "Thanks, on my way",
      webhookUrl: webhook,
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("<Response>");
    const reply = await alice.waitFor((el) => el.getChildText("body") === "Thanks, on my way");
    expect(reply.attrs.from).toBe(`+12025550199@${domain}`);
    expect((await fake.replay(answer.request)).status).toBe(200);
    await alice.sync();
    await gw.gateway.services.get("sms")!.ctx.link.ping();
    await alice.sync();
    expect(alice.received.filter((el) => el.getChildText("body") === "Thanks, on my way")).toHaveLength(1);
  });

  it("sends an uploaded picture as MMS and shows a received one through the gateway's own link", async () => {
    const alice = users.alice!;
    const upload = "https://upload.example.org/abc/photo.jpg";
    // What Conversations sends for an upload: the URL as body and as jabber:x:oob.
    await alice.send(
      xml(
        "message",
        { to: `+12025550199@${domain}`, id: "mms-1", type: "chat" },
        xml("body", {}, upload),
        xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, upload)),
      ),
    );
    await expect
      .poll(() => fake.sent().find((m) => m.mediaUrls.includes(upload)), { timeout: 10_000 })
      .toBeTruthy();
    expect(fake.sent().find((m) => m.mediaUrls.includes(upload))?.body ?? "").toBe("");

    const carrierUrl = fake.media("image/png", "PNGDATA");
    const answer = await fake.sendInbound({
      from: "+12025550199",
      to: OWN,
      body: "look",
      media: [{ url: carrierUrl, contentType: "image/png" }],
      webhookUrl: webhook,
    });
    expect(answer.status).toBe(200);
    const mms = await alice.waitFor((el) => el.getChildText("body") === "look");
    const link = mms.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
    expect(link).toContain(`:${gw.gateway.http!.port}/sms/media/`);
    expect(link).not.toContain(carrierUrl); // the carrier's URL and credentials stay private
    const image = await fetch(link);
    expect(image.headers.get("content-type")).toBe("image/png");
    expect(image.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(await image.text()).toBe("PNGDATA");
  });

  /** An inbound MMS from the carrier with one attachment at `carrierUrl`; the link alice gets for it. */
  async function mmsLink(carrierUrl: string, body: string): Promise<string> {
    const answer = await fake.sendInbound({
      from: "+12025550199",
      to: OWN,
      body,
      media: [{ url: carrierUrl, contentType: "image/png" }],
      webhookUrl: webhook,
    });
    expect(answer.status).toBe(200);
    const mms = await users.alice!.waitFor((el) => el.getChildText("body") === body);
    return mms.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
  }

  it("serves carrier media as a sandboxed download, never as a page of the gateway", async () => {
    const link = await mmsLink(fake.media("text/html", "<script>alert(document.cookie)</script>"), "page?");
    const file = await fetch(link);
    expect(file.status).toBe(200);
    expect(file.headers.get("content-disposition")).toMatch(/^attachment;/);
    expect(file.headers.get("x-content-type-options")).toBe("nosniff");
    expect(file.headers.get("content-security-policy")).toContain("sandbox");
    expect(file.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await file.text()).toBe("<script>alert(document.cookie)</script>");
  });

  it("refuses carrier media over the size cap, and cuts one that grows past it", async () => {
    const big = Buffer.alloc(MEDIA_CAP + 1, 0x41);
    const declared = await fetch(await mmsLink(fake.media("image/jpeg", big), "big declared"));
    expect(declared.status).toBe(502);
    expect(await declared.text()).toContain(`larger than ${MEDIA_CAP} bytes`);
    // Without Content-Length the size is known only on the way: the transfer is cut, not completed.
    const chunked = await fetch(
      await mmsLink(fake.media("image/jpeg", big, { chunked: true }), "big chunked"),
    );
    await expect(chunked.arrayBuffer()).rejects.toThrow();
    // A file under the cap without Content-Length goes through whole.
    const small = Buffer.alloc(MEDIA_CAP - 1, 0x42);
    const ok = await fetch(
      await mmsLink(fake.media("image/jpeg", small, { chunked: true }), "small chunked"),
    );
    expect(Buffer.from(await ok.arrayBuffer()).equals(small)).toBe(true);
  });

  it("answers 504 when the carrier does not send the media in time", async () => {
    const slow = await fetch(await mmsLink(fake.media("image/jpeg", "x", { hang: true }), "slow media"));
    expect(slow.status).toBe(504);
    expect(await slow.text()).toContain("in time");
  });

  it("refuses a forged webhook with 403 and delivers nothing", async () => {
    const alice = users.alice!;
    const forged = await fake.sendInbound({
      from: "+12025550199",
      to: OWN,
      body: "forged!",
      webhookUrl: webhook,
      forge: true,
    });
    expect(forged.status).toBe(403);
    await alice.sync();
    expect(alice.received.some((el) => el.getChildText("body") === "forged!")).toBe(false);
  });

  it("reports a failed SMS as an error on the original message, with Twilio's code explained", async () => {
    const alice = users.alice!;
    fake.script("+12025550188", ["sent", "undelivered"], { errorCode: 21610 });
    await alice.send(chat(`+12025550188@${domain}`, "sms-stop", "hello?"));
    const error = await alice.waitFor((el) => el.attrs.id === "sms-stop" && el.attrs.type === "error");
    expect(errorOf(error).text).toContain("21610");
    // Resent: the same error again, and no second SMS.
    await alice.send(chat(`+12025550188@${domain}`, "sms-stop", "hello?"));
    const isError = (el: Element) => el.attrs.id === "sms-stop" && el.attrs.type === "error";
    await expect.poll(() => alice.received.filter(isError).length, { timeout: 10_000 }).toBe(2);
    expect(errorOf(alice.received.filter(isError)[1]!).text).toContain("21610");
    expect(fake.sent().filter((m) => m.body === "hello?")).toHaveLength(1);
  });

  it("gives pool users different numbers for the same contact and routes each reply to its user", async () => {
    const bob = await user("bob", "pool");
    const carol = await user("carol", "pool");
    const contact = "+12025550150";
    await bob.send(chat(`${contact}@${domain}`, "p-1", "from bob"));
    await carol.send(chat(`${contact}@${domain}`, "p-2", "from carol"));
    await expect.poll(() => fake.sent().filter((m) => m.to === contact).length, { timeout: 10_000 }).toBe(2);
    const bobNumber = fake.sent().find((m) => m.body === "from bob")!.from;
    const carolNumber = fake.sent().find((m) => m.body === "from carol")!.from;
    expect(new Set([bobNumber, carolNumber])).toEqual(new Set(POOL));

    await fake.sendInbound({ from: contact, to: carolNumber!, body: "hi carol", webhookUrl: webhook });
    await fake.sendInbound({ from: contact, to: bobNumber!, body: "hi bob", webhookUrl: webhook });
    await bob.waitFor((el) => el.getChildText("body") === "hi bob");
    await carol.waitFor((el) => el.getChildText("body") === "hi carol");

    // Every shared number is taken with this contact: a user is told so without learning who took them...
    const dave = await user("dave", "pool");
    await dave.send(chat(`${contact}@${domain}`, "p-3", "from dave"));
    const full = await dave.waitFor((el) => el.attrs.id === "p-3");
    expect(errorOf(full).condition).toBe("resource-constraint");
    expect(errorOf(full).text).toContain("Every shared number is already in use");
    expect(errorOf(full).text).not.toContain(bob.bare);
    expect(errorOf(full).text).not.toContain(carol.bare);
    // ...an administrator sees who holds each number, and since when.
    const admin = await TestUser.login(peer, `admin-sms-${domain.replace(/\D/g, "")}`);
    users.admin = admin;
    expect((await admin.iq("set", domain, registration({ mode: "pool" }))).attrs.type).toBe("result");
    await admin.send(chat(`${contact}@${domain}`, "p-4", "from the admin"));
    const holders = errorOf(await admin.waitFor((el) => el.attrs.id === "p-4"));
    expect(holders.condition).toBe("resource-constraint");
    const since = String(new Date().getUTCFullYear());
    expect(holders.text).toContain(`${bobNumber}: ${bob.bare} since ${since}`);
    expect(holders.text).toContain(`${carolNumber}: ${carol.bare} since ${since}`);
    expect(holders.text).toContain("released after 30 days without a message");
  });

  it("refuses bad numbers, other countries and users over their hourly limit, saying why", async () => {
    const alice = users.alice!;
    const cases: [string, string, string][] = [
      [`12345@${domain}`, "bad-number", "jid-malformed"],
      [`+442079460018@${domain}`, "bad-country", "policy-violation"],
    ];
    for (const [to, id, condition] of cases) {
      await alice.send(chat(to, id, "hi"));
      const answer = await alice.waitFor((el) => el.attrs.id === id);
      expect(errorOf(answer).condition, alice.dump()).toBe(condition);
    }
    const sentBefore = fake.sent().length;
    // The limit is 6 per hour; alice has sent 3 so far in this file.
    for (let i = 0; i < 4; i++) await alice.send(chat(`+12025550177@${domain}`, `lim-${i}`, `n${i}`));
    // Each of the four either reaches Twilio or is refused; the sends run side by side, so wait for all four.
    const refusals = () =>
      alice.received.filter((el) => el.attrs.id?.startsWith("lim-") === true && el.attrs.type === "error");
    await expect.poll(() => fake.sent().length - sentBefore + refusals().length, { timeout: 15_000 }).toBe(4);
    expect(fake.sent().length - sentBefore).toBe(3);
    const [refused] = refusals();
    expect(errorOf(refused!)).toMatchObject({ condition: "policy-violation" });
    expect(errorOf(refused!).text).toContain("resets at");
  });

  it("retries when Twilio answers 500, and still sends only one SMS", async () => {
    const bob = users.bob!;
    fake.fail({ status: 500, times: 1 });
    await bob.send(chat(`+12025550166@${domain}`, "retry-1", "once please", true));
    await bob.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "retry-1");
    expect(fake.sent().filter((m) => m.body === "once please")).toHaveLength(1);
  });

  it("sends one receipt however the carrier's status callbacks arrive (twice, out of order)", async () => {
    const bob = users.bob!;
    fake.script("+12025550155", ["sending", "sent", "delivered"], { duplicate: true, reverse: true });
    await bob.send(chat(`+12025550155@${domain}`, "dup-1", "callbacks galore", true));
    await bob.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "dup-1");
    await fake.idle();
    await gw.gateway.services.get("sms")!.ctx.link.ping();
    await bob.sync();
    expect(bob.received.filter((el) => el.getChild("received", RECEIPTS)?.attrs.id === "dup-1")).toHaveLength(
      1,
    );
  });

  it("does not send again when Twilio does not answer, and says the SMS may not have gone out", async () => {
    const bob = users.bob!;
    fake.hang(1);
    await bob.send(chat(`+12025550144@${domain}`, "hang-1", "are you there?"));
    const isError = (el: Element) => el.attrs.id === "hang-1" && el.attrs.type === "error";
    const error = await bob.waitFor(isError, 15_000);
    expect(errorOf(error)).toMatchObject({ condition: "remote-server-timeout" });
    expect(errorOf(error).text).toContain("did not answer in time");
    expect(errorOf(error).text).toContain("not sent again");
    // The client resends the same stanza: the same answer, never a second SMS.
    await bob.send(chat(`+12025550144@${domain}`, "hang-1", "are you there?"));
    await expect.poll(() => bob.received.filter(isError).length, { timeout: 15_000 }).toBe(2);
    expect(errorOf(bob.received.filter(isError)[1]!)).toEqual(errorOf(error));
    // The hung request reached Twilio: the SMS exists, once.
    expect(fake.sent().filter((m) => m.body === "are you there?")).toHaveLength(1);
  });

  it("does not send again when the connection breaks before Twilio answers, and says what happened", async () => {
    // Carol: bob's hourly allowance is counted out by the tests around.
    const carol = users.carol!;
    fake.cut(1);
    await carol.send(chat(`+12025550143@${domain}`, "reset-1", "still there?"));
    const error = await carol.waitFor((el) => el.attrs.id === "reset-1" && el.attrs.type === "error", 15_000);
    expect(errorOf(error)).toMatchObject({ condition: "remote-server-timeout" });
    expect(errorOf(error).text).toContain("connection to the SMS provider broke before it answered");
    expect(errorOf(error).text).toContain("not sent again");
    // Twilio took the request before the connection broke: one SMS, never a second.
    expect(fake.sent().filter((m) => m.body === "still there?")).toHaveLength(1);
  });

  it("answers a resend sent as soon as the receipt shows with the receipt again, however slow the ledger is", async () => {
    const carol = users.carol!;
    // The ledger slow to take the delivery report: the receipt must not reach the user before it is recorded,
    // or a resend right after it is answered as a message still on its way.
    // The real method, kept before the spy replaces it; always called with its ledger as `this`.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const report = OutboundLedger.prototype.report;
    const slowReport = vi.spyOn(OutboundLedger.prototype, "report").mockImplementation(async function (
      this: OutboundLedger,
      ...args: Parameters<OutboundLedger["report"]>
    ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return report.apply(this, args);
    });
    try {
      const isReceipt = (el: Element) => el.getChild("received", RECEIPTS)?.attrs.id === "quick-1";
      await carol.send(chat(`+12025550142@${domain}`, "quick-1", "see you soon", true));
      await carol.waitFor(isReceipt);
      await carol.send(chat(`+12025550142@${domain}`, "quick-1", "see you soon", true));
      await expect.poll(() => carol.received.filter(isReceipt).length, { timeout: 10_000 }).toBe(2);
      expect(fake.sent().filter((m) => m.body === "see you soon")).toHaveLength(1);
    } finally {
      slowReport.mockRestore();
    }
  });

  it("sends a refused SMS when the client resends it: nothing went out the first time", async () => {
    const bob = users.bob!;
    fake.fail({ status: 503, times: 3 });
    await bob.send(chat(`+12025550145@${domain}`, "busy-1", "second try", true));
    const error = await bob.waitFor((el) => el.attrs.id === "busy-1" && el.attrs.type === "error", 15_000);
    expect(errorOf(error).text).toContain("nothing was sent");
    expect(fake.sent().filter((m) => m.body === "second try")).toHaveLength(0);
    await bob.send(chat(`+12025550145@${domain}`, "busy-1", "second try", true));
    await bob.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "busy-1", 15_000);
    expect(fake.sent().filter((m) => m.body === "second try")).toHaveLength(1);
  });

  it("says 'already sent' to a resend of an SMS Twilio took but has not confirmed yet", async () => {
    const carol = users.carol!;
    fake.script("+12025550146", ["sent"]); // no delivery report (yet)
    await carol.send(chat(`+12025550146@${domain}`, "slow-1", "no receipt yet", true));
    await expect.poll(() => fake.sent().filter((m) => m.body === "no receipt yet").length).toBe(1);
    await carol.send(chat(`+12025550146@${domain}`, "slow-1", "no receipt yet", true));
    const note = await carol.waitFor((el) => el.getChildText("body")?.includes("already sent") === true);
    expect(note.attrs.from).toBe(domain);
    expect(note.getChildText("body")).toContain("slow-1");
    expect(fake.sent().filter((m) => m.body === "no receipt yet")).toHaveLength(1);
  });

  it("lets an administrator assign a number, which then routes replies to its new owner", async () => {
    const admin = users.admin!;
    const erin = await TestUser.login(peer, `erin-sms-${domain.split(".")[0]}`);
    users.erin = erin;
    const assign = (fields: Record<string, string>) =>
      admin.iq(
        "set",
        domain,
        xml(
          "command",
          { xmlns: "http://jabber.org/protocol/commands", node: "sms-assign", action: "complete" },
          xml(
            "x",
            { xmlns: "jabber:x:data", type: "submit" },
            ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
          ),
        ),
      );
    const done = await assign({ number: "+12025550300", jid: erin.bare });
    expect(done.getChild("command")?.getChildText("note")).toContain("now belongs to");
    const bad = await assign({ number: "0800 123", jid: erin.bare });
    expect(errorOf(bad).condition).toBe("not-acceptable");
    // The config's numbers are changed in the config, not by command.
    const configured = await assign({ number: OWN, jid: erin.bare });
    expect(errorOf(configured)).toMatchObject({ condition: "conflict" });
    expect(errorOf(configured).text).toContain("numbers.dedicated");
    await fake.sendInbound({
      from: "+12025550199",
      to: "+12025550300",
      body: "for erin",
      webhookUrl: webhook,
    });
    await erin.waitFor((el) => el.getChildText("body") === "for erin");
  });

  it("tells the administrators about an SMS no user can be found for", async () => {
    const admin = users.admin!;
    const answer = await fake.sendInbound({
      from: "+12025550133",
      to: POOL[0]!,
      body: "anyone?",
      webhookUrl: webhook,
    });
    expect(answer.status).toBe(200);
    const notice = await admin.waitFor(
      (el) => el.getChildText("body")?.includes("could not be routed") === true,
    );
    expect(notice.getChildText("body")).toContain("+12025550133");
  });

  it("refuses a message longer than the segment limit, with the count", async () => {
    const alice = users.alice!;
    await alice.send(chat(`+12025550122@${domain}`, "long-1", "ж".repeat(700)));
    const error = await alice.waitFor((el) => el.attrs.id === "long-1");
    expect(errorOf(error).condition).toBe("not-acceptable");
    expect(errorOf(error).text).toMatch(/11 SMS segments/);
  });

  it("counts what it did in /metrics", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    const count = (labels: string) =>
      Number(new RegExp(`^xgw_messages_total\\{${labels}\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? "0");
    // Every SMS Twilio has was either accepted or (a hung request) maybe sent.
    expect(
      count('adapter="sms",direction="out",outcome="accepted"') +
        count('adapter="sms",direction="out",outcome="maybe-sent"'),
    ).toBe(fake.sent().length);
    expect(count('adapter="sms",direction="out",outcome="policy-violation"')).toBeGreaterThanOrEqual(2);
    expect(count('adapter="sms",direction="in",outcome="duplicate"')).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/^xgw_component_up\{adapter="sms",domain="[^"]+"\} 1$/m);
  });
});
