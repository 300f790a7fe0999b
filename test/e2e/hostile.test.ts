/**
 * Hostile input, entry point by entry point, as data: each bad input gets its typed error (a stanza error
 * with human text, an HTTP 4xx), changes nothing (no SMS leaves, nothing reaches the user), and the gateway
 * keeps serving everybody afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { formBody, twilioSignature } from "../twilio/signature.js";
import { inboundParams } from "../twilio/webhooks.js";
import { freePort } from "../bed/index.js";
import { errorOf, registration, TestUser, xml, type Element } from "../support/client.js";
import { startDns, type TestDns } from "../support/dns.js";
import { SmtpSession } from "../support/smtp-session.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const ACCOUNT = "AC" + "5".repeat(32);
const TOKEN = "hostile-token";
const OWN = "+12025550600";
const CONTACT = "+12025550611";
const NS_REGISTER = "jabber:iq:register";
const NS_COMMANDS = "http://jabber.org/protocol/commands";
const NS_GATEWAY = "jabber:iq:gateway";
const MAIL_DOMAIN = "hostile.example.org";
const ALIAS = "target";

describe("hostile input", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let gw: TestGateway;
  let domain: string;
  let webhook: string;
  let user: TestUser;
  let dns: TestDns;
  let smtpPort: number;
  let mailDomain: string;

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "sms");
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TOKEN, numbers: [OWN] });
    const name = `hostile-${slot}`;
    dns = await startDns({ "example.com": "v=spf1 ip4:127.0.0.1 -all" });
    smtpPort = await freePort();
    mailDomain = slotDomain(slot, "mail");
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        email: {
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: 9, starttls: false, timeoutSeconds: 1 },
          inbound: { port: smtpPort, maxRecipients: 5, maxBytes: 64 * 1024 },
          auth: { dnsServers: [dns.server] },
        },
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TOKEN", apiBaseUrl: fake.url },
          numbers: { dedicated: { [OWN]: `${name}@${peer.host}` } },
          allowedCountries: ["US"],
        },
      },
      env: { TOKEN },
    });
    webhook = `http://127.0.0.1:${gw.gateway.http!.port}/sms/twilio/sms`;
    user = await TestUser.login(peer, name);
    expect((await user.iq("set", domain, registration({ mode: "dedicated" }))).attrs.type).toBe("result");
    const alias = await user.iq("set", mailDomain, registration({ alias: ALIAS, name: "Hostile Test" }));
    expect(alias.attrs.type).toBe("result");
  });

  afterAll(async () => {
    await user?.stop();
    await gw?.stop();
    await fake?.stop();
    await dns?.stop();
  });

  const chat = (to: string, id: string, body: string, ...extra: Element[]) =>
    xml("message", { to, id, type: "chat" }, xml("body", {}, body), ...extra);
  const oob = (url: string) => xml("x", { xmlns: "jabber:x:oob" }, xml("url", {}, url));

  /** [what, stanza to send, expected error condition]; each message's id is unique. */
  const messages = (): [string, Element, string][] => [
    ["a contact that is no number", chat(`not-a-number@${domain}`, "h1", "hi"), "jid-malformed"],
    ["a number too short to exist", chat(`+1202555@${domain}`, "h2", "hi"), "jid-malformed"],
    ["a NUL escaped into the contact", chat(`\\00+12025550611@${domain}`, "h3", "hi"), "jid-malformed"],
    ["a 1,000-character contact", chat(`${"9".repeat(1000)}@${domain}`, "h4", "hi"), "jid-malformed"],
    ["a country not allowed", chat(`+442079460000@${domain}`, "h5", "hi"), "policy-violation"],
    ["a 100 kB body", chat(`${CONTACT}@${domain}`, "h6", "x".repeat(100_000)), "not-acceptable"],
    [
      "fifty attachments",
      chat(
        `${CONTACT}@${domain}`,
        "h7",
        "",
        ...Array.from({ length: 50 }, (_, i) => oob(`https://e.x/${i}`)),
      ),
      "not-acceptable",
    ],
  ];

  it("answers every bad message with its typed error and sends no SMS", async () => {
    for (const [what, stanza, condition] of messages()) {
      await user.send(stanza);
      const answer = await user.waitFor((el) => el.name === "message" && el.attrs.id === stanza.attrs.id);
      const err = errorOf(answer);
      expect(err.condition, what).toBe(condition);
      expect(err.text?.length ?? 0, what).toBeGreaterThan(10);
    }
    expect(fake.requests).toBe(0);
  });

  it("answers malformed iq payloads with their typed errors", async () => {
    const cases: [string, Element, string][] = [
      ["registration without a form", xml("query", { xmlns: NS_REGISTER }), "bad-request"],
      ["registration with an unknown mode", registration({ mode: "free-sms-for-all" }), "not-acceptable"],
      ["an unknown namespace", xml("query", { xmlns: "urn:example:nothing" }), "service-unavailable"],
      [
        "an unknown ad-hoc command",
        xml("command", { xmlns: NS_COMMANDS, node: "rm-rf", action: "execute" }),
        "item-not-found",
      ],
      [
        "an admin command from a non-admin",
        xml("command", { xmlns: NS_COMMANDS, node: "sms-assign", action: "execute" }),
        "forbidden",
      ],
      [
        "a 10,000-character address prompt",
        xml("query", { xmlns: NS_GATEWAY }, xml("prompt", {}, "1".repeat(10_000))),
        "item-not-found",
      ],
    ];
    for (const [what, payload, condition] of cases) {
      const answer = await user.iq("set", domain, payload);
      expect(answer.attrs.type, what).toBe("error");
      expect(errorOf(answer).condition, what).toBe(condition);
    }
    // Still registered as before: nothing above changed the registration.
    const reg = await user.iq("get", domain, xml("query", { xmlns: NS_REGISTER }));
    expect(reg.getChild("query")?.getChild("registered")).toBeDefined();
  });

  /** A webhook request as Twilio would sign it, with the chance to spoil any part. */
  function request(params: Record<string, string>, spoil: { url?: string; token?: string } = {}) {
    return {
      body: formBody(params),
      signature: twilioSignature(spoil.token ?? TOKEN, spoil.url ?? webhook, params),
    };
  }
  let sids = 0;
  /** An inbound SMS whose body is `sms <label>`, with a fresh, well-formed MessageSid. */
  const inbound = (label: string, over: Record<string, string> = {}) => ({
    ...inboundParams({
      accountSid: ACCOUNT,
      messageSid: "SM" + (++sids).toString(16).padStart(32, "0"),
      from: CONTACT,
      to: OWN,
      body: `sms ${label}`,
      media: [],
    }),
    ...over,
  });
  const post = (body: string | Buffer, headers: Record<string, string>) =>
    fetch(webhook, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    });

  it("refuses every bad webhook with a 4xx and delivers none of them", async () => {
    const cases: [string, () => Promise<Response>, number][] = [
      ["no signature", () => post(request(inbound("bad1")).body, {}), 403],
      [
        "a signature made with another key",
        () => {
          const r = request(inbound("bad2"), { token: "guess" });
          return post(r.body, { "x-twilio-signature": r.signature });
        },
        403,
      ],
      [
        "a signature for another URL",
        () => {
          const r = request(inbound("bad3"), { url: "https://evil.example/sms" });
          return post(r.body, { "x-twilio-signature": r.signature });
        },
        403,
      ],
      [
        "a body changed after signing",
        () => {
          const r = request(inbound("bad4"));
          return post(r.body.replace("sms+bad4", "pay+me"), { "x-twilio-signature": r.signature });
        },
        403,
      ],
      [
        "a signed request without a sender",
        () => {
          const params = inbound("bad5");
          delete (params as Record<string, string | undefined>).From;
          const r = request(params);
          return post(r.body, { "x-twilio-signature": r.signature });
        },
        400,
      ],
      [
        "a signed request with CR/LF in the sender",
        () => {
          const r = request(inbound("bad6", { From: "+12025550611\r\nX-Evil: 1" }));
          return post(r.body, { "x-twilio-signature": r.signature });
        },
        400,
      ],
      [
        // Its parameters are unreadable as a form, so the signature cannot match them.
        "a signed form sent as plain text",
        () => {
          const r = request(inbound("bad8"));
          return fetch(webhook, {
            method: "POST",
            body: r.body,
            headers: { "content-type": "text/plain", "x-twilio-signature": r.signature },
          });
        },
        403,
      ],
      ["a 2 MB body", () => post("Body=" + "x".repeat(2_000_000), {}), 413],
    ];
    for (const [what, send, status] of cases) {
      const answer = await send();
      expect(answer.status, what).toBe(status);
    }

    // A replayed valid request is answered 200 but delivered once.
    const good = request(inbound("good1"));
    for (let i = 0; i < 3; i++)
      expect((await post(good.body, { "x-twilio-signature": good.signature })).status).toBe(200);
    // A claim of 1,000 media files without their URLs is delivered as its text, not as 1,000 links.
    const media = request(inbound("media", { NumMedia: "1000" }));
    expect((await post(media.body, { "x-twilio-signature": media.signature })).status).toBe(200);
    const withMedia = await user.waitFor((el) => el.getChildText("body") === "sms media");
    expect(withMedia.getChildren("x").filter((x) => x.attrs.xmlns === "jabber:x:oob")).toHaveLength(0);
    // Invalid UTF-8 (Latin-1 "café") in a signed body reaches the user with a replacement character.
    const latin1 = request(inbound("good2", { Body: "caf\uFFFD" }));
    const answer = await post(latin1.body.replace("caf%EF%BF%BD", "caf%E9"), {
      "x-twilio-signature": latin1.signature,
    });
    expect(answer.status).toBe(200);
    await user.waitFor((el) => el.getChildText("body") === "caf\uFFFD");
    await user.sync();
    const bodies = user.received.map((el) => el.getChildText("body") ?? "");
    expect(bodies.filter((b) => b === "sms good1")).toHaveLength(1);
    expect(bodies.some((b) => /sms bad|pay me/.test(b))).toBe(false);
  });

  it("answers every bad SMTP command with its code, delivers nothing, and takes good mail after", async () => {
    const to = `${ALIAS}@${MAIL_DOMAIN}`;
    const smtp = await SmtpSession.open(smtpPort);
    try {
      expect(await smtp.command("EHLO hostile.example.com")).toMatch(/^250/);
      /** [what, command, expected reply code]: one session, as an attacker would keep it open. */
      const cases: [string, string, RegExp][] = [
        ["data before any recipient", "DATA", /^503/],
        ["an unknown command", "XYZZY now", /^50[02]/],
        ["a sender with a NUL", "MAIL FROM:<a\0b@example.com>", /^5/],
        ["a sender with no domain", "MAIL FROM:<nobody>", /^5/],
        ["a line of 10,000 characters", `MAIL FROM:<${"a".repeat(10_000)}@example.com>`, /^5/],
        ["a proper sender", "MAIL FROM:<friend@example.com>", /^250/],
        ["relaying to another domain", "RCPT TO:<victim@elsewhere.example>", /^550/],
        ["an alias that does not exist", `RCPT TO:<nobody@${MAIL_DOMAIN}>`, /^550/],
        ["a real recipient", `RCPT TO:<${to}>`, /^250/],
      ];
      for (const [what, command, code] of cases) expect(await smtp.command(command), what).toMatch(code);
      // Hundreds of recipients: each refused (550 unknown, or 452 once the limit is reached).
      const extra = await Promise.all(
        Array.from({ length: 200 }, (_, i) => smtp.command(`RCPT TO:<${ALIAS}+${i}@${MAIL_DOMAIN}>`)),
      );
      expect(extra.filter((r) => !/^(452|550)/.test(r))).toEqual([]);
      expect(await smtp.command("RSET")).toMatch(/^250/);
      // Over the size limit: 552, nothing stored.
      expect(await smtp.command("MAIL FROM:<friend@example.com>")).toMatch(/^250/);
      expect(await smtp.command(`RCPT TO:<${to}>`)).toMatch(/^250/);
      expect(await smtp.command("DATA")).toMatch(/^354/);
      expect(await smtp.data(`Subject: big\r\n\r\n${"x".repeat(100_000)}`)).toMatch(/^552/);
      // Header injection in the subject and invalid UTF-8: delivered, the subject one line, text readable.
      expect(await smtp.command("MAIL FROM:<friend@example.com>")).toMatch(/^250/);
      expect(await smtp.command(`RCPT TO:<${to}>`)).toMatch(/^250/);
      expect(await smtp.command("DATA")).toMatch(/^354/);
      const bad = Buffer.concat([
        Buffer.from("From: friend@example.com\r\nSubject: hello\rBcc: everyone@example.com\r\n\r\ncaf"),
        Buffer.from([0xe9, 0xff]),
        Buffer.from(" ok\r\n"),
      ]);
      expect(await smtp.data(bad)).toMatch(/^250/);
      expect(await smtp.command("QUIT")).toMatch(/^221/);
    } finally {
      smtp.close();
    }
    const mail = await user.waitFor((el) => el.attrs.from === `friend\\40example.com@${mailDomain}`, 15_000);
    expect(mail.getChildText("subject") ?? "").not.toMatch(/[\r\n]/);
    expect(mail.getChildText("body")).toContain("ok");
    await user.sync();
    // Only that one mail arrived: nothing from the refused commands or the oversized mail.
    expect(user.received.filter((el) => el.attrs.from?.startsWith("friend\\40example.com@"))).toHaveLength(1);
  });

  it("keeps serving after all of it", async () => {
    await user.send(chat(`${CONTACT}@${domain}`, "fine", "still here"));
    await expect.poll(() => fake.sent().length, { timeout: 10_000 }).toBe(1);
    expect(fake.sent()[0]!.body).toBe("still here");
    const health = await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/readyz`);
    expect(health.status).toBe(200);
  });
});
