/**
 * The SMTP listener for mail to users' aliases. It takes RCPT only for aliases that exist (no relay), within
 * the size and recipient limits, and answers 250 to DATA only once the mail is persisted for every
 * recipient through ctx.deliver(); when it cannot be, 451 asks the sender to try again (RFC 5321 §4.2.1).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import { simpleParser, type ParsedMail } from "mailparser";
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from "smtp-server";
import type { AdapterContext } from "../../src/adapter.js";
import type { AliasDirectory } from "./aliases.js";
import { emailCodec } from "./codec.js";
import type { EmailConfig } from "./config.js";
import { readMail, referencesOf } from "./read.js";
import { threadIdFor, type ThreadStore } from "./threads.js";

/** Simultaneous SMTP sessions accepted; more are refused with 421 by smtp-server. */
export const MAX_SMTP_CLIENTS = 100;
/** How long stop() lets open sessions finish before closing them. */
export const CLOSE_TIMEOUT_MS = 5_000;
/** Idle time before a session is closed (RFC 5321 §4.5.3.2.7 asks servers to wait at least 5 minutes). */
export const SOCKET_TIMEOUT_MS = 5 * 60 * 1000;

/** An SMTP reply; smtp-server sends `responseCode` and the message. */
export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
    this.name = "SmtpReply";
  }
}

/** What the listener needs: the adapter's domain, its log and durable delivery, the aliases and threads. */
export interface InboundDeps {
  ctx: Pick<AdapterContext, "domain" | "log" | "deliver">;
  config: Pick<EmailConfig, "mailDomain" | "inbound">;
  aliases: Pick<AliasDirectory, "owner">;
  threads: Pick<ThreadStore, "find" | "get" | "add">;
}

async function readAll(stream: Readable, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Keep reading to the end of DATA (the protocol needs it) but stop keeping what is over the limit.
    if (size <= maxBytes) chunks.push(chunk);
  }
  return size > maxBytes ? null : Buffer.concat(chunks);
}

export class InboundListener {
  private readonly server: SMTPServer;

  constructor(private readonly deps: InboundDeps) {
    const { config } = deps;
    const files = config.inbound.tls;
    // Read once at start: a missing or unreadable file stops the gateway with the path in the error.
    const tls = files ? { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) } : undefined;
    this.server = new SMTPServer({
      name: config.mailDomain,
      banner: "xmpp-gateway mail",
      size: config.inbound.maxBytes,
      authOptional: true,
      // No AUTH: nobody sends through this listener, it only receives for aliases. STARTTLS (RFC 3207)
      // only with a configured certificate.
      disabledCommands: tls ? ["AUTH"] : ["AUTH", "STARTTLS"],
      ...(tls ?? {}),
      maxClients: MAX_SMTP_CLIENTS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      closeTimeout: CLOSE_TIMEOUT_MS,
      logger: false,
      onRcptTo: (address, session, callback) => {
        this.rcpt(address, session).then(
          () => callback(),
          (err: Error) => callback(err),
        );
      },
      onData: (stream, session, callback) => {
        this.data(stream, session).then(
          () => callback(),
          (err: Error) => callback(err),
        );
      },
    });
    this.server.on("error", (err) => deps.ctx.log.warn({ err }, "SMTP listener error"));
  }

  /** The port listened on (the configured one, or the one the system chose for port 0). */
  get port(): number {
    const address = this.server.server.address();
    return typeof address === "object" && address ? address.port : this.deps.config.inbound.port;
  }

  listen(): Promise<void> {
    const { host, port } = this.deps.config.inbound;
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        this.deps.ctx.log.info({ host, port }, "SMTP listener ready");
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async rcpt(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { config, aliases } = this.deps;
    // RFC 5321 §4.5.3.1.10: too many recipients is 452, and the client sends the rest later.
    if (session.envelope.rcptTo.length >= config.inbound.maxRecipients)
      throw new SmtpReply(452, `4.5.3 Too many recipients (at most ${config.inbound.maxRecipients})`);
    const at = address.address.lastIndexOf("@");
    const domain = address.address.slice(at + 1).toLowerCase();
    // RFC 5321 §3.6.2: a server that is not an open relay refuses other domains with 550.
    if (at < 0 || domain !== config.mailDomain) throw new SmtpReply(550, "5.7.1 Relaying denied");
    const owner = await aliases.owner(address.address.slice(0, at));
    if (!owner) throw new SmtpReply(550, "5.1.1 No such user here");
  }

  private async data(stream: Readable, session: SMTPServerSession): Promise<void> {
    const { config } = this.deps;
    const raw = await readAll(stream, config.inbound.maxBytes);
    // RFC 1870 §6.3: a mail over the announced SIZE is refused with 552.
    if (!raw) throw new SmtpReply(552, `5.3.4 Message too big (at most ${config.inbound.maxBytes} bytes)`);
    await this.accept(
      raw,
      session.envelope.rcptTo.map((r) => r.address),
    );
  }

  /**
   * Parses a mail and persists it for the users owning the recipient addresses (aliases on the mail
   * domain); throws SmtpReply. Also used for mail between two users of the gateway.
   */
  async accept(raw: Buffer, recipients: readonly string[]): Promise<void> {
    const { ctx, aliases, threads } = this.deps;
    let parsed: ParsedMail;
    try {
      parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
    } catch (err) {
      // Parsing is deterministic: a retry would fail the same way (RFC 3463 5.6.0: bad content).
      ctx.log.info({ err }, "inbound mail could not be parsed");
      throw new SmtpReply(554, "5.6.0 The message could not be parsed");
    }
    const sender = parsed.from?.value[0]?.address ?? "";
    let fromJid: string;
    try {
      fromJid = `${emailCodec.encode(sender)}@${ctx.domain}`;
    } catch {
      throw new SmtpReply(550, "5.1.7 The From address is missing or not a valid address");
    }
    // Without a Message-ID, the raw bytes identify a redelivery of the same mail.
    const messageId = parsed.messageId ?? `<${createHash("sha256").update(raw).digest("hex")}@missing>`;
    const stanzaId = `mail-${createHash("sha256").update(messageId).digest("base64url").slice(0, 22)}`;
    const mail = readMail(parsed);
    const references = referencesOf(parsed);
    const users = new Set<string>();
    try {
      for (const rcpt of recipients) {
        const owner = await aliases.owner(rcpt.slice(0, rcpt.lastIndexOf("@")));
        if (owner) users.add(owner);
      }
      if (users.size === 0) throw new SmtpReply(550, "5.1.1 No such user here");
      for (const user of users) {
        const known = await threads.find(user, parsed.inReplyTo, references);
        const thread = known ?? threadIdFor(references[0] ?? messageId);
        await ctx.deliver(
          {
            kind: "message",
            to: user,
            from: fromJid,
            id: stanzaId,
            type: "chat",
            body: mail.body,
            thread,
            ...(mail.subject ? { subject: mail.subject } : {}),
            ...(mail.nick ? { nick: mail.nick } : {}),
            ...(mail.delay ? { delay: mail.delay } : {}),
          },
          { dedupeId: `${messageId} ${user}` },
        );
        await threads.add(user, sender, thread, messageId, await threads.get(user, thread), mail.subject);
      }
    } catch (err) {
      if (err instanceof SmtpReply) throw err;
      ctx.log.warn({ err, messageId }, "inbound mail not persisted; asking the sender to retry");
      throw new SmtpReply(451, "4.3.0 Temporary failure storing the message; try again later");
    }
    ctx.log.info({ messageId, recipients: users.size }, "mail received");
  }
}
