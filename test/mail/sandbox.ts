/**
 * Mail sandbox for the quickstart: the outside world of email on loopback. It is the gateway's SMTP relay
 * (it keeps and prints every mail the gateway sends) and an outside sender: a line typed on stdin becomes
 * a mail to the gateway's SMTP listener, answering the latest mail to that address (threaded).
 *
 *   npx tsx test/mail/sandbox.ts
 *   friend@example.com> hello                      a reply from friend@example.com to the last mail it got
 *   friend@example.com>alice@mail.localhost> hi    a new mail to an address on the gateway
 *
 * Environment: SANDBOX_GATEWAY_SMTP (host:port of the gateway's listener, default 127.0.0.1:2525),
 * SANDBOX_PORT (the relay port, default 2587; 0: a free port).
 */
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { pathToFileURL } from "node:url";
import { simpleParser, type ParsedMail } from "mailparser";
import nodemailer from "nodemailer";
import { smtpServer } from "../support/relay.js";

/** A typed line: `FROM> text` or `FROM>TO> text`. */
const LINE = /^([^\s<>@]+@[^\s<>@]+)>(?:([^\s<>@]+@[^\s<>@]+)>)?\s?(.*)$/;

export interface SunkMail {
  /** MAIL FROM (the gateway's bounce address). */
  sender: string;
  rcpt: string[];
  mail: ParsedMail;
}

export interface MailSandboxOptions {
  /** The gateway's SMTP listener. */
  gateway: { host: string; port: number };
  /** Port of the relay the gateway sends through (0: a free one). */
  port?: number;
  input?: Readable;
  output?: Writable;
}

export interface MailSandbox {
  port: number;
  mails: SunkMail[];
  /** Sends a mail as `from`: to `to`, or else an answer to the latest mail `from` got. */
  send(from: string, text: string, to?: string): Promise<{ messageId: string }>;
  stop(): Promise<void>;
}

export async function startMailSandbox(opts: MailSandboxOptions): Promise<MailSandbox> {
  const out = opts.output ?? process.stdout;
  const say = (line: string): void => void out.write(line + "\n");
  const mails: SunkMail[] = [];
  const relay = smtpServer(
    {
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      logger: false,
      closeTimeout: 1000,
      onData(stream, session, callback) {
        simpleParser(stream).then(
          (mail) => {
            const { mailFrom, rcptTo } = session.envelope;
            const rcpt = rcptTo.map((r) => r.address);
            mails.push({ sender: mailFrom ? mailFrom.address : "", rcpt, mail });
            const from = mail.from?.text ?? "?";
            say(
              `mail to ${rcpt.join(", ")} from ${from}: [${mail.subject ?? ""}] ${mail.text?.trim() ?? ""}`,
            );
            callback();
          },
          (err: Error) => callback(err),
        );
      },
    },
    (err) => say(`relay: a connection broke (${err.message})`),
  );
  await new Promise<void>((resolve) => relay.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const port = (relay.server.address() as { port: number }).port;
  const outside = nodemailer.createTransport({
    host: opts.gateway.host,
    port: opts.gateway.port,
    ignoreTLS: true,
    name: "sandbox.example.com",
  });

  const send = async (from: string, text: string, to?: string): Promise<{ messageId: string }> => {
    const last = [...mails].reverse().find((m) => m.rcpt.some((r) => r.toLowerCase() === from.toLowerCase()));
    const target = to ?? last?.mail.from?.value[0]?.address;
    if (!target) throw new Error(`${from} got no mail yet: write "${from}>someone@their.domain> text"`);
    const answering = to ? undefined : last?.mail;
    const refs = answering ? [...[answering.references ?? []].flat(), answering.messageId ?? ""] : [];
    const subject = answering?.subject ? `Re: ${answering.subject.replace(/^re:\s*/i, "")}` : "Hello";
    const info = (await outside.sendMail({
      from,
      to: target,
      subject,
      text,
      ...(answering?.messageId ? { inReplyTo: answering.messageId, references: refs.filter(Boolean) } : {}),
    })) as { messageId: string };
    return { messageId: info.messageId };
  };

  say(
    `Mail sandbox: relay at 127.0.0.1:${port}, the gateway's listener at ${opts.gateway.host}:${opts.gateway.port}`,
  );
  say(`type "friend@example.com> text" to answer as friend@example.com`);
  const lines = createInterface({ input: opts.input ?? process.stdin });
  lines.on("line", (line) => {
    const match = LINE.exec(line.trim());
    if (!match) return;
    const [, from = "", to, body = ""] = match;
    send(from, body, to).then(
      () => say(`sent as ${from}`),
      (err: unknown) => say(`! ${err instanceof Error ? err.message : String(err)}`),
    );
  });
  return {
    port,
    mails,
    send,
    stop: async () => {
      lines.close();
      outside.close();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
}

/** Whether a typed line is for the mail sandbox (the SMS sandbox should not see it). */
export const isMailLine = (line: string): boolean => LINE.test(line.trim());

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [host = "127.0.0.1", port = "2525"] = (process.env.SANDBOX_GATEWAY_SMTP ?? "").split(":");
  const sandbox = await startMailSandbox({
    gateway: { host, port: Number(port) || 2525 },
    port: process.env.SANDBOX_PORT === undefined ? 2587 : Number(process.env.SANDBOX_PORT),
  });
  const stop = (): void => void sandbox.stop().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
