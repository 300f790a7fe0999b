/**
 * The SMTP listener against a real SMTP client (nodemailer) on loopback, with the gateway's storage faked:
 * what a sending server sees when the store is down, the mail too big, or the recipients too many.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import nodemailer, { type Transporter } from "nodemailer";
import type SMTPTransport from "nodemailer/lib/smtp-transport/index.js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { IdMap, InboundEvent } from "../../src/adapter.js";
import { InboundListener, type InboundDeps } from "./inbound.js";
import { ThreadStore } from "./threads.js";

const USERS: Record<string, string> = {
  alice: "alice@example.org",
  bob: "bob@example.org",
  carol: "carol@example.org",
};

function memoryIds(): IdMap {
  const map = new Map<string, Record<string, string>>();
  return {
    put: (kind, id, value) => Promise.resolve(void map.set(`${kind}/${id}`, value)),
    get: (kind, id) => Promise.resolve(map.get(`${kind}/${id}`) ?? null),
    delete: (kind, id) => Promise.resolve(void map.delete(`${kind}/${id}`)),
  };
}

function listener(
  inbound: Partial<InboundDeps["config"]["inbound"]>,
  deliver: InboundDeps["ctx"]["deliver"],
  aliases: InboundDeps["aliases"] = { owner: (alias) => Promise.resolve(USERS[alias] ?? null) },
): InboundListener {
  return new InboundListener({
    ctx: { domain: "mail.gw.example", log: pino({ level: "silent" }), deliver },
    config: {
      mailDomain: "people.example.org",
      inbound: {
        host: "127.0.0.1",
        port: 0,
        maxBytes: 2048,
        maxRecipients: 2,
        filesTtlSeconds: 60,
        ...inbound,
      },
    },
    aliases,
    threads: new ThreadStore(memoryIds()),
  });
}

describe("SMTP listener limits and failures", () => {
  const delivered: { event: InboundEvent; dedupeId: string | undefined }[] = [];
  let storeDown = false;
  let server: InboundListener;
  let outside: Transporter<SMTPTransport.SentMessageInfo>;

  beforeAll(async () => {
    server = listener({}, (event, options) => {
      if (storeDown) return Promise.reject(new Error("Redis is down"));
      delivered.push({ event, dedupeId: options?.dedupeId });
      return Promise.resolve(true);
    });
    await server.listen();
    outside = nodemailer.createTransport({ host: "127.0.0.1", port: server.port, ignoreTLS: true });
  });

  afterAll(async () => {
    outside?.close();
    await server?.close();
  });

  const send = (fields: Record<string, unknown>) =>
    outside.sendMail({ from: "friend@example.com", to: "alice@people.example.org", ...fields });

  it("answers 451 while the mail cannot be stored, and delivers it once the sender retries", async () => {
    storeDown = true;
    const mail = { subject: "Retry me", text: "hello", messageId: "<retry-1@example.com>" };
    await expect(send(mail)).rejects.toMatchObject({ responseCode: 451 });
    expect(delivered.filter((d) => d.dedupeId?.startsWith("<retry-1@"))).toHaveLength(0);
    storeDown = false;
    await send(mail);
    const got = delivered.filter((d) => d.dedupeId === "<retry-1@example.com> alice@example.org");
    expect(got).toHaveLength(1);
    expect(got[0]?.event).toMatchObject({
      to: "alice@example.org",
      from: "friend\\40example.com@mail.gw.example",
    });
  });

  it("gives a redelivered mail the same stanza id and dedupe id", async () => {
    const mail = { text: "twice", messageId: "<twice@example.com>" };
    await send(mail);
    await send(mail);
    const ids = delivered
      .filter((d) => d.dedupeId?.startsWith("<twice@"))
      .map((d) => [d.event.id, d.dedupeId]);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toEqual(ids[1]);
  });

  it("refuses mail over the size limit with 552 and stores nothing", async () => {
    const before = delivered.length;
    await expect(send({ text: "z".repeat(4096) })).rejects.toMatchObject({ responseCode: 552 });
    expect(delivered.length).toBe(before);
  });

  it("takes at most the recipient limit and answers 452 for the rest", async () => {
    const info = await send({
      to: ["alice@people.example.org", "bob@people.example.org", "carol@people.example.org"],
      text: "to three",
    });
    expect(info.accepted).toHaveLength(2);
    expect(info.rejectedErrors?.[0]).toMatchObject({ responseCode: 452 });
    expect(delivered.filter((d) => d.event.kind === "message" && d.event.body === "to three")).toHaveLength(
      2,
    );
  });

  it("refuses a mail without a usable From with 550", async () => {
    await expect(
      send({ from: "", envelope: { from: "x@example.com", to: "alice@people.example.org" }, text: "anon" }),
    ).rejects.toMatchObject({
      responseCode: 550,
    });
  });
});

describe("SMTP listener recipients", () => {
  it("delivers to the users RCPT accepted, asking for each alias's owner once", async () => {
    const asked: string[] = [];
    const owners = new Map(Object.entries(USERS));
    const got: InboundEvent[] = [];
    const server = listener(
      { maxRecipients: 5 },
      (event) => Promise.resolve(void got.push(event)).then(() => true),
      {
        owner: (alias) => {
          asked.push(alias);
          // The alias is given up while the mail's data is on its way: it was accepted at RCPT all the same.
          const owner = owners.get(alias) ?? null;
          owners.delete(alias);
          return Promise.resolve(owner);
        },
      },
    );
    await server.listen();
    const outside = nodemailer.createTransport({ host: "127.0.0.1", port: server.port, ignoreTLS: true });
    try {
      const info = await outside.sendMail({
        from: "friend@example.com",
        to: ["alice@people.example.org", "bob@people.example.org", "nobody@people.example.org"],
        text: "to two of three",
      });
      expect(info.rejectedErrors?.map((e) => (e as { responseCode?: number }).responseCode)).toEqual([550]);
      expect(got.map((e) => e.to).sort()).toEqual(["alice@example.org", "bob@example.org"]);
      expect(asked.sort()).toEqual(["alice", "bob", "nobody"]);
    } finally {
      outside.close();
      await server.close();
    }
  });
});

describe("SMTP listener with a certificate", () => {
  it("offers STARTTLS only when a certificate is configured", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mail-tls-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const [certFile, keyFile] = [path.join(dir, "cert.pem"), path.join(dir, "key.pem")];
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=people.example.org"],
        ...["-keyout", keyFile, "-out", certFile],
      ],
      { stdio: "ignore" },
    );
    const got: InboundEvent[] = [];
    const deliver = (event: InboundEvent) => Promise.resolve(void got.push(event)).then(() => true);
    const withTls = listener({ tls: { certFile, keyFile } }, deliver);
    const without = listener({}, deliver);
    await withTls.listen();
    await without.listen();
    // requireTLS: the client refuses to send unless the session was upgraded with STARTTLS.
    const send = (port: number) =>
      nodemailer
        .createTransport({ host: "127.0.0.1", port, requireTLS: true, tls: { rejectUnauthorized: false } })
        .sendMail({ from: "friend@example.com", to: "alice@people.example.org", text: `over ${port}` });
    try {
      await send(withTls.port);
      expect(got.map((e) => (e.kind === "message" ? e.body : ""))).toEqual([`over ${withTls.port}`]);
      await expect(send(without.port)).rejects.toThrow(/STARTTLS/);
    } finally {
      await withTls.close();
      await without.close();
    }
  });
});
