/**
 * When the SMTP relay misbehaves: it never greets, it goes silent after taking the mail, it is down. The
 * user gets remote-server-timeout, mail is retried only when the relay certainly did not take it, and
 * nothing is sent twice. The relay is a real smtp-server on loopback whose behaviour the test switches.
 * This gateway keeps the default DMARC policy (mark): a forged mail arrives with the warning.
 */
import nodemailer from "nodemailer";
import type { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bed/index.js";
import { slotDomain } from "../slots.js";
import { errorOf, registration, TestUser, xml, type Element } from "../support/client.js";
import { startDns, type TestDns } from "../support/dns.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { smtpServer, startRelay, type TestRelay } from "../support/relay.js";
import { emailConfigSchema } from "../../adapters/email/config.js";
import { Relay } from "../../adapters/email/relay.js";

type Mode = "no-greeting" | "silent-after-data" | "busy" | "answers";

describe("a relay that is slow, silent or down", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let mode: Mode = "no-greeting";
  let connections = 0;
  let dataCommands = 0;
  let relay: SMTPServer;
  let gw: TestGateway;
  let domain: string;
  let alice: TestUser;
  let dns: TestDns;
  let inboundPort: number;

  beforeAll(async () => {
    relay = smtpServer({
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      logger: false,
      closeTimeout: 100,
      onConnect(_session, callback) {
        connections++;
        // No greeting at all: the client's greeting timeout fires.
        if (mode !== "no-greeting") callback();
      },
      onRcptTo(_address, _session, callback) {
        if (mode === "busy")
          return callback(Object.assign(new Error("4.3.2 Busy, try later"), { responseCode: 451 }));
        callback();
      },
      onData(stream, _session, callback) {
        dataCommands++;
        // Silent: takes the mail and never answers, so it may or may not have been delivered.
        if (mode === "silent-after-data") return void stream.resume();
        stream.on("end", () => callback());
        stream.resume();
      },
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
    const port = (relay.server.address() as { port: number }).port;
    dns = await startDns({
      "forged.example.net": "v=spf1 ip4:192.0.2.1 -all",
      "_dmarc.forged.example.net": "v=DMARC1; p=reject",
    });
    inboundPort = await freePort();
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "mail");
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      adapters: {
        email: {
          mailDomain: "relay-test.example.org",
          relay: { host: "127.0.0.1", port, starttls: false, timeoutSeconds: 1 },
          inbound: { port: inboundPort },
          auth: { dnsServers: [dns.server] },
        },
      },
    });
    alice = await TestUser.login(peer, `alice-${domain.split(".")[0]}`);
    const reg = await alice.iq("set", domain, registration({ alias: `alice-${domain.split(".")[0]}` }));
    expect(reg.attrs.type, alice.dump()).toBe("result");
  });

  afterAll(async () => {
    await alice?.stop();
    await gw?.stop();
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await dns?.stop();
  });

  it("with the policy 'mark', delivers a mail failing DMARC with a plain warning first", async () => {
    const outside = nodemailer.createTransport({ host: "127.0.0.1", port: inboundPort, ignoreTLS: true });
    await outside.sendMail({
      from: "ceo@forged.example.net",
      to: `alice-${domain.split(".")[0]}@relay-test.example.org`,
      subject: "Urgent",
      text: "Wire the money.",
    });
    outside.close();
    const got = await alice.waitFor((el) => el.getChildText("subject") === "Urgent");
    expect(got.getChildText("body")).toMatch(
      /^⚠ The sender of this mail could not be verified: it may not really come from ceo@forged\.example\.net\..*\n\nWire the money\.$/s,
    );
  });

  const send = (id: string) =>
    alice.send(
      xml(
        "message",
        { to: `friend\\40example.com@${domain}`, id, type: "chat" },
        xml("body", {}, `mail ${id}`),
        xml("request", { xmlns: "urn:xmpp:receipts" }),
      ),
    );
  const errorFor = (id: string) =>
    alice.waitFor((el) => el.attrs.id === id && el.attrs.type === "error", 30_000);

  it("tries again when the relay does not greet, then says it was not sent", async () => {
    mode = "no-greeting";
    await send("r-greet");
    const error = errorOf(await errorFor("r-greet"));
    expect(error).toMatchObject({ condition: "remote-server-timeout", type: "wait" });
    expect(error.text).toMatch(/it was not sent, try again later/);
    expect(connections).toBe(3); // the first attempt and the two retries
    expect(dataCommands).toBe(0);
  });

  it("never sends twice when the relay goes silent after taking the mail", async () => {
    mode = "silent-after-data";
    await send("r-silent");
    const error = errorOf(await errorFor("r-silent"));
    expect(error.condition).toBe("remote-server-timeout");
    expect(error.text).toMatch(/may have been sent, so it is not sent again/);
    expect(dataCommands).toBe(1);
    // The client resends the same stanza: the same answer, and the relay never sees a second DATA.
    mode = "answers";
    await send("r-silent");
    const isError = (el: Element) => el.attrs.id === "r-silent" && el.attrs.type === "error";
    await expect.poll(() => alice.received.filter(isError).length, { timeout: 15_000 }).toBe(2);
    expect(errorOf(alice.received.filter(isError)[1]!)).toEqual(error);
    expect(dataCommands).toBe(1);
  });

  it("sends a mail the relay refused when the client resends it, and a resend after that gets the receipt", async () => {
    mode = "busy";
    await send("r-busy");
    const error = errorOf(await errorFor("r-busy"));
    expect(error.text).toMatch(/it was not sent, try again later/);
    const before = dataCommands;
    mode = "answers";
    await send("r-busy");
    const isReceipt = (el: Element) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "r-busy";
    await alice.waitFor(isReceipt, 30_000);
    expect(dataCommands - before).toBe(1);
    await send("r-busy");
    await expect.poll(() => alice.received.filter(isReceipt).length, { timeout: 15_000 }).toBe(2);
    expect(dataCommands - before).toBe(1);
  });

  it("says so when the relay is down", async () => {
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    await send("r-down");
    const error = errorOf(await errorFor("r-down"));
    expect(error.condition).toBe("remote-server-timeout");
    expect(error.text).toMatch(/it was not sent, try again later/);
    expect(
      alice.received.some((el) => el.getChild("received", "urn:xmpp:receipts")?.attrs.id === "r-down"),
    ).toBe(false);
  });
});

describe("a relay at an IPv6 address", () => {
  it("sends through [::1] and ::1, as written in the config", async () => {
    const relay = await startRelay("::1");
    try {
      for (const host of ["[::1]", "::1"]) {
        const config = emailConfigSchema.parse({
          mailDomain: "relay-test.example.org",
          relay: { host, port: relay.port, starttls: false, timeoutSeconds: 5 },
        });
        const client = new Relay(config.relay, undefined);
        try {
          await client.send({
            from: "alice@relay-test.example.org",
            to: "bob@example.net",
            subject: `over IPv6 (${host})`,
            text: "hello",
          });
        } finally {
          client.close();
        }
      }
      expect(relay.mails.map((m) => /^Subject: (.*)$/m.exec(m.toString())?.[1]?.trim())).toEqual([
        "over IPv6 ([::1])",
        "over IPv6 (::1)",
      ]);
    } finally {
      await relay.stop();
    }
  });
});

describe("connections to the relay", () => {
  const send = async (relay: TestRelay, count: number, relayConfig: Record<string, unknown> = {}) => {
    const config = emailConfigSchema.parse({
      mailDomain: "relay-test.example.org",
      relay: { host: "127.0.0.1", port: relay.port, starttls: false, timeoutSeconds: 5, ...relayConfig },
    });
    const client = new Relay(config.relay, undefined);
    try {
      for (let i = 0; i < count; i++)
        await client.send({
          from: "a@relay-test.example.org",
          to: "b@example.net",
          subject: `m${i}`,
          text: "hi",
        });
    } finally {
      client.close();
    }
  };
  const subjects = (relay: TestRelay) =>
    relay.mails.map((m) => /^Subject: (.*)$/m.exec(m.toString())?.[1]?.trim());

  it("sends many mails over one connection, and opens a new one after messagesPerConnection", async () => {
    const relay = await startRelay();
    try {
      // Beyond nodemailer's own 100: each new connection costs its set-up, and mail queued behind a retired
      // connection waited 100 ms.
      await send(relay, 150);
      expect(relay.connections).toBe(1);
      await send(relay, 7, { messagesPerConnection: 3 });
      expect(relay.connections).toBe(1 + 3);
      expect(relay.mails).toHaveLength(157);
    } finally {
      await relay.stop();
    }
  });

  it("sends the mail a relay refused for its own limit per connection again, on a new one, once", async () => {
    const relay = await startRelay();
    relay.mailsPerConnection = 5;
    try {
      await send(relay, 8);
      expect(subjects(relay)).toEqual(["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]);
      expect(relay.connections).toBe(2);
    } finally {
      await relay.stop();
    }
  });
});
