/**
 * The test relay and the quickstart's mail sandbox outlive a sender that dies in the middle of a mail: the
 * broken connection is recorded (or said) and the next mail is taken. (smtp-server reports a reset during a
 * transaction as an 'error' event: unheard, it ended the test process whenever a gateway was killed while
 * sending, as the fault suite does, and the sandbox with it.)
 */
import { once } from "node:events";
import { connect, type Socket } from "node:net";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PassThrough } from "node:stream";
import { startMailSandbox } from "../mail/sandbox.js";
import { startRelay, type TestRelay } from "./relay.js";

/** Sends `line` and waits for the relay's answer starting with `code`. */
async function say(socket: Socket, line: string | undefined, code: string): Promise<void> {
  if (line !== undefined) socket.write(`${line}\r\n`);
  let answer = "";
  while (!new RegExp(`^${code} `, "m").test(answer)) {
    const [chunk] = (await once(socket, "data")) as [Buffer];
    answer += chunk.toString("utf8");
  }
}

/** Opens a mail transaction on `port` and resets the connection in the middle of it, as a killed sender does. */
async function resetMidTransaction(port: number): Promise<void> {
  const socket = connect(port, "127.0.0.1");
  await say(socket, undefined, "220");
  await say(socket, "EHLO dying.example", "250");
  await say(socket, "MAIL FROM:<gw@example.org>", "250");
  await say(socket, "RCPT TO:<friend@example.com>", "250");
  // The relay, idle in the transaction, reads ECONNRESET.
  socket.resetAndDestroy();
}

async function sendOne(port: number, subject: string): Promise<void> {
  const transport = nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true });
  await transport.sendMail({ from: "gw@example.org", to: "friend@example.com", subject, text: "whole" });
  transport.close();
}

describe("SMTP relays of the tests and the quickstart", () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await startRelay();
  });
  afterAll(() => relay?.stop());

  it("records a connection reset in the middle of a transaction and takes the next mail", async () => {
    await resetMidTransaction(relay.port);
    await expect
      .poll(() => relay.errors.map((e) => (e as NodeJS.ErrnoException).code))
      .toEqual(["ECONNRESET"]);

    await sendOne(relay.port, "next");
    expect(relay.mails.map((m) => m.toString("utf8"))).toEqual([expect.stringContaining("Subject: next")]);
  });

  it("keeps the quickstart's mail sandbox up, saying so, when a connection breaks in the middle of a mail", async () => {
    const output = new PassThrough();
    let printed = "";
    output.on("data", (chunk: Buffer) => (printed += chunk.toString("utf8")));
    const input = new PassThrough();
    const sandbox = await startMailSandbox({
      gateway: { host: "127.0.0.1", port: 9 },
      port: 0,
      input,
      output,
    });
    try {
      await resetMidTransaction(sandbox.port);
      await expect.poll(() => printed).toContain("relay: a connection broke (read ECONNRESET)");
      await sendOne(sandbox.port, "after");
      expect(sandbox.mails.map((m) => m.mail.subject)).toEqual(["after"]);
    } finally {
      await sandbox.stop();
    }
  });
});
