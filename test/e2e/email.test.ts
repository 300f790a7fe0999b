/**
 * Email as users see it: write to an address from XMPP and the relay gets the mail; mail to the user's
 * alias arrives in the chat, replies thread back; unknown aliases, open relaying and relay refusals.
 * The relay is a real smtp-server on loopback; outside senders use nodemailer.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { Resolver } from "node:dns/promises";
import { simpleParser, type ParsedMail } from "mailparser";
import { dkimVerify } from "mailauth";
import nodemailer, { type Transporter } from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { errorOf, registration, TestUser, xml } from "../support/client.js";
import { freePort } from "../bed/index.js";
import { startDns, type TestDns } from "../support/dns.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { smtpServer } from "../support/relay.js";

const MAIL_DOMAIN = "people.example.org";
/** Space each alias has for files in this test (config files.maxBytesPerAlias). */
const FILE_QUOTA = 300 * 1024;
const RECEIPTS = "urn:xmpp:receipts";

interface Sunk {
  rcpt: string[];
  /** MAIL FROM. */
  sender: string;
  raw: Buffer;
  mail: ParsedMail;
}

/** The gateway's DKIM key (1024 bits: one TXT string holds its public half). */
const DKIM = generateKeyPairSync("rsa", { modulusLength: 1024 });
const DKIM_PUBLIC = DKIM.publicKey.export({ type: "spki", format: "der" }).toString("base64");
const DKIM_PRIVATE = DKIM.privateKey.export({ type: "pkcs8", format: "pem" }).toString();

/**
 * The relay: keeps every mail; refuses recipients at refuse.example.com (550) and busy.example.com (451),
 * and the first one at flaky.example.com (451).
 */
async function startSink(): Promise<{ port: number; mails: Sunk[]; stop(): Promise<void> }> {
  const mails: Sunk[] = [];
  let flaky = 0;
  const server = smtpServer({
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
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks);
        simpleParser(raw).then(
          (mail) => {
            const { mailFrom, rcptTo } = session.envelope;
            mails.push({
              rcpt: rcptTo.map((r) => r.address),
              sender: mailFrom ? mailFrom.address : "",
              raw,
              mail,
            });
            callback();
          },
          (err: Error) => callback(err),
        );
      });
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
  let dns: TestDns;
  let filesDir: string;
  const others: TestUser[] = [];
  const friend = () => `friend\\40example.com@${domain}`;

  const mailTo = (to: string, fields: Record<string, unknown>) =>
    outside.sendMail({ from: '"Jane Friend" <friend@example.com>', to, ...fields });

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "mail");
    sink = await startSink();
    // example.com sends from loopback (SPF) and publishes DMARC; forged.example.net sends only from
    // 192.0.2.1 and asks receivers to reject the rest; the gateway's DKIM key is published too.
    dns = await startDns({
      "example.com": "v=spf1 ip4:127.0.0.1 -all",
      "_dmarc.example.com": "v=DMARC1; p=none",
      "forged.example.net": "v=spf1 ip4:192.0.2.1 -all",
      "_dmarc.forged.example.net": "v=DMARC1; p=reject",
      [`gw._domainkey.${MAIL_DOMAIN}`]: `v=DKIM1; k=rsa; p=${DKIM_PUBLIC}`,
    });
    const inboundPort = await freePort();
    filesDir = await mkdtemp(path.join(tmpdir(), "gw-mail-files-"));
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
          auth: { dnsServers: [dns.server], onDmarcFail: "reject" },
          dkim: { selector: "gw", privateKeyEnv: "TEST_EMAIL_DKIM_KEY" },
          files: { dir: filesDir, maxBytesPerAlias: FILE_QUOTA },
        },
      },
      env: { TEST_EMAIL_DKIM_KEY: DKIM_PRIVATE },
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
    await dns?.stop();
    if (filesDir) await rm(filesDir, { recursive: true, force: true });
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
    // Signed with the gateway's key: a receiver checking DKIM against the published key sees a pass.
    const resolver = new Resolver();
    resolver.setServers([dns.server]);
    const dkim = await dkimVerify(sent!.raw, {
      resolver: async (name, type) => (await resolver.resolve(name, type)) as string[][],
    });
    expect(dkim.results[0]).toMatchObject({ signingDomain: MAIL_DOMAIN, status: { result: "pass" } });
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

  it("ties a bounce to the message it reports on and tells the user why the mail was not delivered", async () => {
    const ghost = `ghost\\40example.com@${domain}`;
    await alice.send(
      xml(
        "message",
        { to: ghost, id: "m-bounce", type: "chat" },
        xml("body", {}, "Are you there?"),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
    await alice.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === "m-bounce");
    const sent = sink.mails.find((m) => m.mail.text?.trim() === "Are you there?")!;
    // VERP: the envelope sender names this one mail with a token nobody can guess.
    expect(sent.sender).toMatch(new RegExp(`^bounces\\+[\\w-]{20,}@${MAIL_DOMAIN.replace(/\./g, "\\.")}$`));
    const dsn = (to: string) =>
      [
        "From: Mail Delivery System <mailer-daemon@example.com>",
        `To: <${to}>`,
        "Subject: Undelivered Mail Returned to Sender",
        `Message-ID: <dsn-${to.length}-${Date.now()}@example.com>`,
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        "",
        "--B",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "--B",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.com",
        "",
        "Final-Recipient: rfc822; ghost@example.com",
        "Action: failed",
        "Status: 5.1.1",
        "Diagnostic-Code: smtp; 550 5.1.1 <ghost@example.com>: User unknown",
        "",
        "--B--",
        "",
      ].join("\r\n");
    const envelope = (to: string) => ({ from: "mailer-daemon@example.com", to: [to] });
    await outside.sendMail({ envelope: envelope(sent.sender), raw: dsn(sent.sender) });
    const error = await alice.waitFor((el) => el.attrs.id === "m-bounce" && el.attrs.type === "error");
    expect(error.attrs.from).toBe(ghost);
    expect(errorOf(error).condition).toBe("item-not-found");
    expect(errorOf(error).text).toBe(
      "Your mail to ghost@example.com could not be delivered: 550 5.1.1 <ghost@example.com>: User unknown",
    );
    const guessed = `bounces+${"A".repeat(24)}@${MAIL_DOMAIN}`;
    await expect(outside.sendMail({ envelope: envelope(guessed), raw: dsn(guessed) })).rejects.toMatchObject({
      responseCode: 550,
    });
  });

  it("passes attachments on as links that cannot be guessed", async () => {
    await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "The notes",
      text: "Here they are.",
      attachments: [{ filename: "notes.txt", content: "hello file", contentType: "text/plain" }],
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "The notes");
    const url = got.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
    expect(url).toMatch(/\/email\/files\/[\w-]{32}\/notes\.txt$/);
    expect(got.getChildText("body")).toBe(`Here they are.\n\n📎 notes.txt: ${url}`);
    const file = await fetch(url);
    expect(file.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await file.text()).toBe("hello file");
    const guessed = url.replace(/files\/[\w-]{32}/, `files/${"A".repeat(32)}`);
    expect((await fetch(guessed)).status).toBe(404);
  });

  it("keeps attachments on disk, serves them as sandboxed downloads, and keeps only metadata in Redis", async () => {
    const content = Buffer.alloc(100 * 1024, "x");
    content.write("<html><script>alert(1)</script>");
    await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "The page",
      text: "Open this.",
      attachments: [{ filename: "page.html", content, contentType: "text/html" }],
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "The page");
    const url = got.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
    const token = /files\/([\w-]{32})\//.exec(url)?.[1] ?? "";
    // The bytes are in the configured directory…
    expect((await readFile(path.join(filesDir, token.slice(0, 2), token))).equals(content)).toBe(true);
    // …served as a download that cannot run in the gateway's origin…
    const file = await fetch(url);
    expect(file.status).toBe(200);
    expect(file.headers.get("content-type")).toBe("text/html");
    expect(file.headers.get("content-disposition")).toMatch(/^attachment; filename="page\.html"/);
    expect(file.headers.get("x-content-type-options")).toBe("nosniff");
    expect(file.headers.get("content-security-policy")).toBe("sandbox; default-src 'none'");
    expect(file.headers.get("content-length")).toBe(String(content.length));
    expect(Buffer.from(await file.arrayBuffer()).equals(content)).toBe(true);
    // …and no key of this gateway in Redis holds anything near the file's size.
    const redis = new Redis(bed.redis!.url);
    try {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, found] = await redis.scan(cursor, "MATCH", `${gw.keyPrefix}*`, "COUNT", 1000);
        keys.push(...found);
        cursor = next;
      } while (cursor !== "0");
      const sizes = await Promise.all(
        keys.map(async (k) => ({ k, bytes: (await redis.memory("USAGE", k)) ?? 0 })),
      );
      expect(sizes.filter((s) => s.bytes > 16 * 1024)).toEqual([]);
      const meta = await redis.hgetall(`${gw.keyPrefix}a:{email}:file:${token}`);
      expect(meta).toMatchObject({ name: "page.html", size: String(content.length), owners: alias });
      expect(meta.content).toBeUndefined();
    } finally {
      redis.disconnect();
    }
  });

  it("delivers the mail with a note instead of a file over the alias's space", async () => {
    const big = Buffer.alloc(FILE_QUOTA + 1, "y");
    await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "Too big",
      text: "A large one.",
      attachments: [
        { filename: "huge.bin", content: big, contentType: "application/octet-stream" },
        { filename: "small.txt", content: "still here", contentType: "text/plain" },
      ],
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "Too big");
    const body = got.getChildText("body") ?? "";
    expect(body).toContain("A large one.");
    expect(body).toContain(`📎 huge.bin (300 KB) was not kept: the file space of ${alias} (300 KB) is full`);
    // The other attachment, within the space, is still passed on.
    const url = got.getChild("x", "jabber:x:oob")?.getChildText("url") ?? "";
    expect(url).toMatch(/\/small\.txt$/);
    expect(await (await fetch(url)).text()).toBe("still here");
  });

  it("shows only the new part of a reply, with a link to the whole mail", async () => {
    await mailTo(`${alias}@${MAIL_DOMAIN}`, {
      subject: "Re: Quotes",
      text: "Sounds good.\n\nOn Mon, 1 Jan 2024, Alice wrote:\n> Shall we meet?\n> Alice",
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "Re: Quotes");
    const body = got.getChildText("body") ?? "";
    const [shown, link] = body.split("\n\n[quoted text hidden; the whole mail: ");
    expect(shown).toBe("Sounds good.");
    const full = await fetch(link!.replace(/]$/, ""));
    expect(await full.text()).toContain("> Shall we meet?");
  });

  it("refuses a forged sender whose domain's DMARC policy says reject, and warns about unverified senders", async () => {
    await expect(
      outside.sendMail({
        from: "ceo@forged.example.net",
        to: `${alias}@${MAIL_DOMAIN}`,
        text: "Wire the money.",
      }),
    ).rejects.toMatchObject({ responseCode: 550, response: expect.stringContaining("DMARC") as unknown });
    // A domain with no SPF, DKIM or DMARC at all: delivered, with a plain warning first.
    await outside.sendMail({
      from: "someone@nodns.example.org",
      to: `${alias}@${MAIL_DOMAIN}`,
      subject: "Unverifiable",
      text: "Trust me.",
    });
    const got = await alice.waitFor((el) => el.getChildText("subject") === "Unverifiable");
    expect(got.getChildText("body")).toMatch(
      /^⚠ The sender of this mail could not be verified: it may not really come from someone@nodns\.example\.org\..*\n\nTrust me\.$/s,
    );
    expect(alice.received.some((el) => el.getChildText("body")?.includes("Wire the money"))).toBe(false);
  });

  it("delivers mail with broken MIME and invalid UTF-8 instead of failing on it", async () => {
    const raw = Buffer.concat([
      Buffer.from(
        [
          "From: Jane Friend <friend@example.com>",
          `To: ${alias}@${MAIL_DOMAIN}`,
          "Subject: =?utf-8?B?////?= broken",
          "MIME-Version: 1.0",
          'Content-Type: multipart/mixed; boundary="never-closed"',
          "",
          "--never-closed",
          "Content-Type: text/plain; charset=utf-8",
          "",
          "caf",
        ].join("\r\n"),
      ),
      Buffer.from([0xe9, 0xff, 0xfe]), // Latin-1 é and bytes that are never UTF-8
      Buffer.from(" au lait\r\n"),
    ]);
    await outside.sendMail({
      envelope: { from: "friend@example.com", to: [`${alias}@${MAIL_DOMAIN}`] },
      raw,
    });
    const got = await alice.waitFor((el) => el.getChildText("body")?.includes("au lait") ?? false);
    expect(got.getChildText("body")).toMatch(/^caf.* au lait$/);
    expect(got.getChildText("subject")).toContain("broken");
  });

  it("counts what it did in /metrics", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${gw.gateway.http!.privatePort}/metrics`)).text();
    const value = (name: string, labels = "") =>
      Number(
        new RegExp(`^xgw_email_${name}${labels ? `\\{${labels}\\}` : ""} (\\d+)$`, "m").exec(metrics)?.[1] ??
          "0",
      );
    expect(value("mails_sent_total", 'outcome="relayed"')).toBeGreaterThanOrEqual(5);
    expect(value("mails_sent_total", 'outcome="refused"')).toBeGreaterThanOrEqual(1);
    expect(value("mails_sent_total", 'outcome="local"')).toBe(1);
    expect(value("relay_retries_total")).toBeGreaterThanOrEqual(1);
    expect(value("smtp_rejections_total", 'reason="relay"')).toBe(1);
    expect(value("smtp_rejections_total", 'reason="dmarc"')).toBe(1);
    expect(value("smtp_rejections_total", 'reason="unknown-recipient"')).toBeGreaterThanOrEqual(2);
    expect(value("bounces_total", 'action="failed"')).toBe(1);
    expect(value("files_refused_total", 'quota="alias"')).toBe(1);
    expect(value("files_stored_bytes")).toBeGreaterThan(100 * 1024);
    expect(value("mails_received_total")).toBeGreaterThanOrEqual(5);
  });

  it("frees the address when the user unregisters", async () => {
    const gone = await alice.iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, xml("remove")));
    expect(gone.attrs.type).toBe("result");
    await expect(mailTo(`${alias}@${MAIL_DOMAIN}`, { text: "still there?" })).rejects.toMatchObject({
      responseCode: 550,
    });
  });
});
