/**
 * Email as users see it: write to an address from XMPP and the relay gets the mail; mail to the user's
 * alias arrives in the chat, replies thread back; unknown aliases, open relaying and relay refusals.
 * The relay is a real smtp-server on loopback; outside senders use nodemailer.
 */
import { simpleParser, type ParsedMail } from "mailparser";
import nodemailer, { type Transporter } from "nodemailer";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { errorOf, registration, TestUser, xml } from "../support/client.js";
import { freePort } from "../bed/index.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const MAIL_DOMAIN = "people.example.org";
const RECEIPTS = "urn:xmpp:receipts";

interface Sunk {
  rcpt: string[];
  mail: ParsedMail;
}

/**
 * The relay: keeps every mail; refuses recipients at refuse.example.com (550) and busy.example.com (451),
 * and the first one at flaky.example.com (451).
 */
async function startSink(): Promise<{ port: number; mails: Sunk[]; stop(): Promise<void> }> {
  const mails: Sunk[] = [];
  let flaky = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    onRcptTo(address, _session, callback) {
      if (address.address.endsWith("@flaky.example.com") && flaky++ === 0)
        return callback(Object.assign(new Error("4.3.2 Busy, try later"), { responseCode: 451 }));
      if (address.address.endsWith("@busy.example.com"))
        return callback(Object.assign(new Error("4.3.2 Busy, try later"), { responseCode: 451 }));
      if (address.address.endsWith("@refuse.example.com"))
        return callback(Object.assign(new Error("5.7.1 Recipient refused by policy"), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          mails.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), mail });
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as { port: number }).port;
  return { port, mails, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe("email through an SMTP relay and the gateway's own listener", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let gw: TestGateway;
  let domain: string;
  let alice: TestUser;
  let alias: string;
  let outside: Transporter;
  const others: TestUser[] = [];
  const friend = () => `friend\\40example.com@${domain}`;

  const mailTo = (to: string, fields: Record<string, unknown>) =>
    outside.sendMail({ from: '"Jane Friend" <friend@example.com>', to, ...fields });

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "mail");
    sink = await startSink();
    const inboundPort = await freePort();
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [`admin-${domain.split(".")[0]}@${peer.host}`],
      adapters: {
        email: {
          mailDomain: MAIL_DOMAIN,
          relay: { host: "127.0.0.1", port: sink.port, starttls: false, timeoutSeconds: 5 },
          inbound: { port: inboundPort, maxRecipients: 3 },
        },
      },
    });
    outside = nodemailer.createTransport({ host: "127.0.0.1", port: inboundPort, ignoreTLS: true });
    alice = await TestUser.login(peer, `alice-${domain.split(".")[0]}`);
    alias = `alice-${domain.split(".")[0]}`;
    const reg = await alice.iq("set", domain, registration({ alias, name: "Alice Example" }));
    expect(reg.attrs.type, alice.dump()).toBe("result");
  });

  afterAll(async () => {
    outside?.close();
    await Promise.all(others.map((u) => u.stop()));
    await alice?.stop();
    await gw?.stop();
    await sink?.stop();
  });

  it("sends a message with a subject as mail from the user's alias, and shows a receipt", async () => {
    await alice.send(
      xml(
        "message",
        { to: friend(), id: "m-1", type: "chat" },
        xml("subject", {}, "Dinner plans"),
        xml("body", {}, "Are you free on Friday?"),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    const receipt = await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-1");
    expect(receipt.attrs.from).toBe(friend());
    const sent = sink.mails.find((m) => m.mail.text?.trim() === "Are you free on Friday?");
    expect(sent?.rcpt).toEqual(["friend@example.com"]);
    expect(sent?.mail.from?.value[0]).toMatchObject({
      name: "Alice Example",
      address: `${alias}@${MAIL_DOMAIN}`,
    });
    expect(sent?.mail.subject).toBe("Dinner plans");
    expect(sent?.mail.messageId).toMatch(new RegExp(`^<[^<>@]+@${MAIL_DOMAIN}>$`));
  });

  it("neutralises header injection in the subject and refuses it in the display name", async () => {
    await alice.send(
      xml(
        "message",
        { to: friend(), id: "m-inject", type: "chat" },
        xml("subject", {}, "Hi\r\nBcc: x@y.example.com"),
        xml("body", {}, "injection attempt"),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-inject");
    const sent = sink.mails.find((m) => m.mail.text?.trim() === "injection attempt");
    expect(sent?.rcpt).toEqual(["friend@example.com"]);
    expect(sent?.mail.bcc).toBeUndefined();
    expect(sent?.mail.subject).toBe("Hi Bcc: x@y.example.com");

    const renamed = await alice.iq(
      "set",
      domain,
      registration({ alias, name: "Eve\r\nBcc: x@y.example.com" }),
    );
    expect(errorOf(renamed)).toMatchObject({ condition: "not-acceptable" });
    expect(errorOf(renamed).text).toMatch(/line breaks/);
  });

  it("delivers outside mail to the alias with its subject and the sender's address as the contact", async () => {
    await mailTo(`${alias}@${MAIL_DOMAIN}`, { subject: "Hello from outside", text: "Nice to meet you." });
    const got = await alice.waitFor((el) => el.getChildText("body") === "Nice to meet you.");
    expect(got.attrs.from).toBe(friend());
    expect(got.getChildText("subject")).toBe("Hello from outside");
  });

  it("shows HTML-only mail as text", async () => {
    await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "Newsletter",
      html: '<p>Read <b>this</b>: <a href="https://example.com/n">news</a></p>',
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "Newsletter");
    expect(got.getChildText("body")).toBe("Read this: news [https://example.com/n]");
  });

  it("threads a reply to the user's mail back into the same <thread>, and the user's answer into the mail thread", async () => {
    await alice.send(
      xml(
        "message",
        { to: friend(), id: "m-thread", type: "chat" },
        xml("thread", {}, "t-lunch"),
        xml("body", {}, "Lunch tomorrow?"),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-thread");
    const first = sink.mails.find((m) => m.mail.text?.trim() === "Lunch tomorrow?")!.mail;
    expect(first.subject).toBe("Lunch tomorrow?");

    const sentReply = await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "Re: Lunch tomorrow?",
      text: "Yes, at noon.",
      inReplyTo: first.messageId,
      references: [first.messageId!],
    });
    const reply = await alice.waitFor((el) => el.getChildText("body") === "Yes, at noon.");
    expect(reply.getChildText("thread")).toBe("t-lunch");

    await alice.send(
      xml(
        "message",
        { to: friend(), id: "m-thread-2", type: "chat" },
        xml("thread", {}, "t-lunch"),
        xml("body", {}, "Great, see you."),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-thread-2");
    const answer = sink.mails.find((m) => m.mail.text?.trim() === "Great, see you.")!.mail;
    expect(answer.subject).toBe("Re: Lunch tomorrow?");
    expect(answer.inReplyTo).toBe(sentReply.messageId);
    expect(answer.references).toEqual([first.messageId, sentReply.messageId]);
  });

  it("continues the conversation when the user's client sends no <thread>", async () => {
    const pat = `pat\\40example.com@${domain}`;
    const asked = await outside.sendMail({
      from: "Pat <pat@example.com>",
      to: `${alias}@${MAIL_DOMAIN}`,
      subject: "Quote request",
      text: "How much for 10 units?",
    });
    const got = await alice.waitFor((el) => el.getChildText("body") === "How much for 10 units?");
    expect(got.attrs.from).toBe(pat);
    const answer = (id: string, body: string) =>
      alice.send(
        xml(
          "message",
          { to: pat, id, type: "chat" },
          xml("body", {}, body),
          xml("request", { xmlns: RECEIPTS }),
        ),
      );
    await answer("m-pat-1", "100 EUR.");
    await answer("m-pat-2", "Shipping included.");
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-pat-2");
    const first = sink.mails.find((m) => m.mail.text?.trim() === "100 EUR.")!.mail;
    const second = sink.mails.find((m) => m.mail.text?.trim() === "Shipping included.")!.mail;
    expect(first.subject).toBe("Re: Quote request");
    expect(first.inReplyTo).toBe(asked.messageId);
    expect(second.subject).toBe("Re: Quote request");
    expect(second.inReplyTo).toBe(first.messageId);
  });

  it("refuses mail to unknown aliases and to other domains with 550", async () => {
    await expect(mailTo(`nobody@${MAIL_DOMAIN}`, { text: "hi" })).rejects.toMatchObject({
      responseCode: 550,
    });
    await expect(mailTo("someone@elsewhere.example.com", { text: "relay me" })).rejects.toMatchObject({
      responseCode: 550,
    });
  });

  it("tells the user when the relay refuses the address, with the relay's reply", async () => {
    await alice.send(
      xml(
        "message",
        { to: `bob\\40refuse.example.com@${domain}`, id: "m-refused", type: "chat" },
        xml("body", {}, "hi"),
      ),
    );
    const error = await alice.waitFor((el) => el.attrs.id === "m-refused" && el.attrs.type === "error");
    expect(errorOf(error).condition).toBe("item-not-found");
    expect(errorOf(error).text).toContain("5.7.1 Recipient refused by policy");
  });

  it("keeps addresses unique, and lets an administrator list them and take one back", async () => {
    const tag = domain.split(".")[0]!;
    const bob = await TestUser.login(peer, `bob-${tag}`);
    const admin = await TestUser.login(peer, `admin-${tag}`);
    others.push(bob, admin);
    const taken = await bob.iq("set", domain, registration({ alias: alias.toUpperCase() }));
    expect(errorOf(taken)).toMatchObject({ condition: "conflict" });
    expect(errorOf(taken).text).toContain("taken");
    const own = await bob.iq("set", domain, registration({ alias: "" })); // the default: his JID's localpart
    expect(own.attrs.type, bob.dump()).toBe("result");

    const command = (node: string, fields: Record<string, string> = {}) =>
      admin.iq(
        "set",
        domain,
        xml(
          "command",
          { xmlns: "http://jabber.org/protocol/commands", node, action: "complete" },
          xml(
            "x",
            { xmlns: "jabber:x:data", type: "submit" },
            ...Object.entries(fields).map(([k, v]) => xml("field", { var: k }, xml("value", {}, v))),
          ),
        ),
      );
    const list = await command("email-aliases");
    expect(list.toString()).toContain(`bob-${tag}@${MAIL_DOMAIN} → ${bob.bare}`);
    const removed = await command("email-alias-remove", { alias: `bob-${tag}` });
    expect(removed.getChild("command")?.getChildText("note")).toContain("no longer belongs");

    await expect(mailTo(`bob-${tag}@${MAIL_DOMAIN}`, { text: "hi bob" })).rejects.toMatchObject({
      responseCode: 550,
    });
    await bob.send(xml("message", { to: friend(), id: "b-1", type: "chat" }, xml("body", {}, "from bob")));
    const refused = await bob.waitFor((el) => el.attrs.id === "b-1" && el.attrs.type === "error");
    expect(errorOf(refused)).toMatchObject({ condition: "registration-required" });
    expect(sink.mails.some((m) => m.mail.text?.trim() === "from bob")).toBe(false);
  });

  it("tells the user to try later when the relay answers 4xx", async () => {
    await alice.send(
      xml(
        "message",
        { to: `ann\\40busy.example.com@${domain}`, id: "m-busy", type: "chat" },
        xml("body", {}, "hi"),
      ),
    );
    const error = await alice.waitFor((el) => el.attrs.id === "m-busy" && el.attrs.type === "error");
    expect(errorOf(error)).toMatchObject({ condition: "remote-server-timeout", type: "wait" });
    expect(errorOf(error).text).toContain("try again later");
  });

  it("sends again, once, when the relay was busy the first time", async () => {
    await alice.send(
      xml(
        "message",
        { to: `ann\\40flaky.example.com@${domain}`, id: "m-flaky", type: "chat" },
        xml("body", {}, "second time lucky"),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-flaky");
    expect(sink.mails.filter((m) => m.mail.text?.trim() === "second time lucky")).toHaveLength(1);
  });

  it("delivers mail between two users of the gateway directly, with a receipt", async () => {
    const tag = domain.split(".")[0]!;
    const dan = await TestUser.login(peer, `dan-${tag}`);
    others.push(dan);
    expect((await dan.iq("set", domain, registration({ alias: `dan-${tag}` }))).attrs.type).toBe("result");
    await alice.send(
      xml(
        "message",
        { to: `dan-${tag}\\40${MAIL_DOMAIN}@${domain}`, id: "m-local", type: "chat" },
        xml("subject", {}, "Internal"),
        xml("body", {}, "Hi Dan, no relay needed."),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-local");
    const got = await dan.waitFor((el) => el.getChildText("body") === "Hi Dan, no relay needed.");
    expect(got.attrs.from).toBe(`${alias}\\40${MAIL_DOMAIN}@${domain}`);
    expect(got.getChildText("subject")).toBe("Internal");
    expect(sink.mails.some((m) => m.mail.text?.includes("no relay needed"))).toBe(false);

    await alice.send(
      xml(
        "message",
        { to: `nobody\\40${MAIL_DOMAIN}@${domain}`, id: "m-nobody", type: "chat" },
        xml("body", {}, "?"),
      ),
    );
    const error = await alice.waitFor((el) => el.attrs.id === "m-nobody" && el.attrs.type === "error");
    expect(errorOf(error).condition).toBe("item-not-found");
  });

  it("turns what a user types in the add-contact prompt into the contact's JID", async () => {
    const ask = (prompt: string) =>
      alice.iq("set", domain, xml("query", { xmlns: "jabber:iq:gateway" }, xml("prompt", {}, prompt)));
    const answer = await ask("Jane Friend <mailto:Friend@Example.COM>");
    expect(answer.getChild("query")?.getChildText("jid")).toBe(`Friend\\40example.com@${domain}`);
    const bad = await ask("not an address");
    expect(errorOf(bad).condition).toBe("item-not-found");
  });

  it("frees the address when the user unregisters", async () => {
    const gone = await alice.iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, xml("remove")));
    expect(gone.attrs.type).toBe("result");
    await expect(mailTo(`${alias}@${MAIL_DOMAIN}`, { text: "still there?" })).rejects.toMatchObject({
      responseCode: 550,
    });
  });
});
