/**
 * The SMTP listener for mail to users' aliases. It takes RCPT only for aliases that exist (no relay), within
 * the size and recipient limits, and answers 250 to DATA only once the mail is persisted for every
 * recipient through ctx.deliver(); when it cannot be, 451 asks the sender to try again (RFC 5321 §4.2.1).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import type { ParsedMail } from "mailparser";
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from "smtp-server";
import type { AdapterContext } from "../../src/adapter.js";
import type { AliasDirectory } from "./aliases.js";
import { checkSender, type AuthVerdict, type Connection, type DmarcFailPolicy } from "./auth.js";
import type { DNSResolver } from "mailauth";
import { bounceText, bounceToken, isFailure, parseDeliveryStatus, type BounceStore } from "./bounces.js";
import { emailCodec } from "./codec.js";
import type { EmailConfig } from "./config.js";
import { NO_METRICS, type EmailMetrics, type RejectReason } from "./metrics.js";
import { presentMail } from "./present.js";
import type { StoredFile } from "./files.js";
import { readMail, referencesOf } from "./read.js";
import { threadIdFor, type ThreadStore } from "./threads.js";
import { loadOnce } from "../../src/load-once.js";

/** mailparser, loaded with the first mail rather than at start: an idle gateway does not need it. */
const mailparser = loadOnce(() => import("mailparser"));

/** Simultaneous SMTP sessions accepted; more are refused with 421 by smtp-server. */
export const MAX_SMTP_CLIENTS = 100;
/** How long stop() lets open sessions finish before closing them. */
export const CLOSE_TIMEOUT_MS = 5_000;
/** Idle time before a session is closed (RFC 5321 §4.5.3.2.7 asks servers to wait at least 5 minutes). */
export const SOCKET_TIMEOUT_MS = 5 * 60 * 1000;

/** An SMTP reply; smtp-server sends `responseCode` and the message. `reason` names it in the metrics. */
export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
    readonly reason?: RejectReason,
  ) {
    super(message);
    this.name = "SmtpReply";
  }
}

/**
 * What the listener needs: the adapter's domain, its log and durable delivery, the aliases and threads;
 * optionally the bounce records, where files go, sender authentication and metrics.
 */
export interface InboundDeps {
  ctx: Pick<AdapterContext, "domain" | "log" | "deliver">;
  config: Pick<EmailConfig, "mailDomain" | "inbound">;
  aliases: Pick<AliasDirectory, "owner">;
  threads: Pick<ThreadStore, "find" | "get" | "add">;
  bounces?: Pick<BounceStore, "get">;
  /** Keeps a file for the aliases it was mailed to; its URL. Throws FileRefused over quota. */
  files?: (file: StoredFile, owners: readonly string[]) => Promise<string>;
  auth?: { resolver: DNSResolver; onDmarcFail: DmarcFailPolicy };
  metrics?: EmailMetrics;
}

/** The longest part of a bounce's text used as its reason when it has no delivery-status part. */
const MAX_BOUNCE_TEXT_CHARS = 300;

function localPart(address: string): string {
  return address.slice(0, address.lastIndexOf("@"));
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
  /**
   * The user RCPT found owning each alias recipient of a transaction: the mail goes to them without asking
   * Redis again at the end of DATA (a recipient accepted at RCPT is accepted, as for any MTA).
   */
  private readonly owners = new WeakMap<SMTPServerAddress, string>();

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
      // The listener never uses the client's reverse DNS name (SPF uses the IP and the HELO name).
      disableReverseLookup: true,
      onRcptTo: (address, session, callback) => {
        this.rcpt(address, session).then(
          () => callback(),
          (err: Error) => callback(this.counted(err)),
        );
      },
      onData: (stream, session, callback) => {
        this.data(stream, session).then(
          () => callback(),
          (err: Error) => callback(this.counted(err)),
        );
      },
    });
    this.server.on("error", (err) => deps.ctx.log.warn({ err }, "SMTP listener error"));
  }

  private get metrics(): EmailMetrics {
    return this.deps.metrics ?? NO_METRICS;
  }

  private counted(err: Error): Error {
    if (err instanceof SmtpReply && err.reason) this.metrics.rejected(err.reason);
    return err;
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
      throw new SmtpReply(
        452,
        `4.5.3 Too many recipients (at most ${config.inbound.maxRecipients})`,
        "too-many-recipients",
      );
    const at = address.address.lastIndexOf("@");
    const domain = address.address.slice(at + 1).toLowerCase();
    // RFC 5321 §3.6.2: a server that is not an open relay refuses other domains with 550.
    if (at < 0 || domain !== config.mailDomain) throw new SmtpReply(550, "5.7.1 Relaying denied", "relay");
    const local = address.address.slice(0, at);
    const token = bounceToken(local);
    const unknown = () => new SmtpReply(550, "5.1.1 No such user here", "unknown-recipient");
    if (token) {
      if (!(await this.deps.bounces?.get(token))) throw unknown();
      return;
    }
    const owner = await aliases.owner(local);
    if (!owner) throw unknown();
    this.owners.set(address, owner);
  }

  private async data(stream: Readable, session: SMTPServerSession): Promise<void> {
    const { config } = this.deps;
    const raw = await readAll(stream, config.inbound.maxBytes);
    // RFC 1870 §6.3: a mail over the announced SIZE is refused with 552.
    if (!raw)
      throw new SmtpReply(552, `5.3.4 Message too big (at most ${config.inbound.maxBytes} bytes)`, "too-big");
    const { mailFrom, rcptTo } = session.envelope;
    const owners = new Map<string, string>();
    for (const recipient of rcptTo) {
      const owner = this.owners.get(recipient);
      if (owner) owners.set(localPart(recipient.address), owner);
    }
    await this.accept(
      raw,
      rcptTo.map((r) => r.address),
      {
        ip: session.remoteAddress,
        helo: session.hostNameAppearsAs || session.remoteAddress,
        sender: mailFrom ? mailFrom.address : "",
      },
      owners,
    );
  }

  /** SPF, DKIM and DMARC of a mail from outside; a DNS failure leaves the sender unverified. */
  private async authenticate(raw: Buffer, connection: Connection): Promise<AuthVerdict | undefined> {
    const { auth, ctx, config } = this.deps;
    if (!auth) return undefined;
    let verdict: AuthVerdict;
    try {
      verdict = await checkSender(raw, connection, { resolver: auth.resolver, mta: config.mailDomain });
    } catch (err) {
      ctx.log.warn({ err }, "sender authentication failed; the mail is marked unverified");
      verdict = {
        spf: "temperror",
        dkim: "temperror",
        arc: "temperror",
        dmarc: "temperror",
        verified: false,
        disowned: false,
        summary: "temperror",
      };
    }
    this.metrics.authResult(verdict.dmarc, verdict.verified);
    // RFC 7489 §6.6.3 leaves the action to the receiver: the operator chose to refuse.
    if (verdict.disowned && auth.onDmarcFail === "reject")
      throw new SmtpReply(550, "5.7.1 Rejected by the sender domain's DMARC policy", "dmarc");
    return verdict;
  }

  /**
   * Parses a mail and persists it for the users owning the recipient addresses (aliases on the mail
   * domain, or bounce addresses of their mail); throws SmtpReply. `connection` is absent for mail between
   * two users of the gateway, which never left it (nothing to authenticate). `owners`: the owner of each
   * alias (local part) already known, from RCPT; the others are looked up.
   */
  async accept(
    raw: Buffer,
    recipients: readonly string[],
    connection?: Connection,
    owners?: ReadonlyMap<string, string>,
  ): Promise<void> {
    const { ctx } = this.deps;
    let parsed: ParsedMail;
    try {
      const { simpleParser } = await mailparser();
      parsed = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true });
    } catch (err) {
      // Parsing is deterministic: a retry would fail the same way (RFC 3463 5.6.0: bad content).
      ctx.log.info({ err }, "inbound mail could not be parsed");
      throw new SmtpReply(554, "5.6.0 The message could not be parsed", "unparseable");
    }
    const verdict = connection ? await this.authenticate(raw, connection) : undefined;
    // Without a Message-ID, the raw bytes identify a redelivery of the same mail.
    const messageId = parsed.messageId ?? `<${createHash("sha256").update(raw).digest("hex")}@missing>`;
    const locals = recipients.map(localPart);
    const tokens = locals.map(bounceToken).filter((t): t is string => t !== null);
    try {
      for (const token of tokens) await this.bounce(token, parsed, messageId);
      const aliases = locals.filter((l) => bounceToken(l) === null);
      if (aliases.length > 0 || tokens.length === 0)
        await this.toUsers(parsed, aliases, messageId, raw, verdict, owners);
    } catch (err) {
      if (err instanceof SmtpReply) throw err;
      ctx.log.warn({ err, messageId }, "inbound mail not persisted; asking the sender to retry");
      throw new SmtpReply(451, "4.3.0 Temporary failure storing the message; try again later", "not-stored");
    }
  }

  /** A delivery status notification about one of the users' mails becomes an error on that message. */
  private async bounce(token: string, parsed: ParsedMail, messageId: string): Promise<void> {
    const { ctx, bounces } = this.deps;
    const sent = await bounces?.get(token);
    // A bounce for a mail forgotten since (TTL): accepted and dropped, as bouncing a bounce helps nobody.
    if (!sent) return void ctx.log.info({ messageId }, "bounce for an unknown or expired mail dropped");
    // mailparser shows a message/delivery-status part as text (or, for some, as an attachment).
    const report = parsed.attachments.find((a) =>
      /^message\/(global-)?delivery-status$/i.test(a.contentType),
    );
    const statuses = parseDeliveryStatus(report ? report.content.toString("utf8") : (parsed.text ?? ""));
    // A bounce without a report (some old MTAs): the mail failed, and its text says why.
    const status = statuses.find((s) => s.recipient?.toLowerCase() === sent.to.toLowerCase()) ??
      statuses[0] ?? {
        recipient: sent.to,
        action: "failed",
        status: undefined,
        diagnostic: parsed.text?.trim().slice(0, MAX_BOUNCE_TEXT_CHARS),
      };
    const text = bounceText(sent, status);
    this.metrics.bounce(status.action ?? "unknown");
    const dedupeId = `bounce ${token} ${messageId}`;
    if (isFailure(status))
      await ctx.deliver(
        {
          kind: "error",
          to: sent.sender,
          from: sent.contact,
          id: sent.stanzaId,
          condition: "item-not-found",
          text,
        },
        { dedupeId },
      );
    else if (status.action === "delayed")
      await ctx.deliver(
        {
          kind: "message",
          to: sent.user,
          from: ctx.domain,
          id: `bounce-${token}-${status.action}`,
          type: "chat",
          body: text,
        },
        { dedupeId },
      );
    ctx.log.info({ jid: sent.user, stanzaId: sent.stanzaId, action: status.action }, "bounce received");
  }

  private async toUsers(
    parsed: ParsedMail,
    locals: readonly string[],
    messageId: string,
    raw: Buffer,
    verdict: AuthVerdict | undefined,
    known: ReadonlyMap<string, string> | undefined,
  ): Promise<void> {
    const { ctx, aliases, threads } = this.deps;
    const sender = parsed.from?.value[0]?.address ?? "";
    let fromJid: string;
    try {
      fromJid = `${emailCodec.encode(sender)}@${ctx.domain}`;
    } catch {
      throw new SmtpReply(550, "5.1.7 The From address is missing or not a valid address", "bad-from");
    }
    const stanzaId = `mail-${createHash("sha256").update(messageId).digest("base64url").slice(0, 22)}`;
    const users = new Set<string>();
    /** The aliases that take the mail: its files count against their space. */
    const taken = new Set<string>();
    const owners = await Promise.all(locals.map(async (local) => known?.get(local) ?? aliases.owner(local)));
    locals.forEach((local, i) => {
      const owner = owners[i];
      if (owner) {
        users.add(owner);
        taken.add(local);
      }
    });
    if (users.size === 0) throw new SmtpReply(550, "5.1.1 No such user here", "unknown-recipient");
    const mail = readMail(parsed);
    // Stored before 250 like the mail itself: files are part of what the sender handed over.
    const shown = await presentMail(mail.body, parsed.attachments, {
      files: this.deps.files && ((file: StoredFile) => this.deps.files!(file, [...taken])),
      verifiedSender: sender,
      unverified: verdict !== undefined && !verdict.verified,
    });
    const references = referencesOf(parsed);
    for (const user of users) {
      const known = await threads.find(user, parsed.inReplyTo, references);
      const thread = known ?? threadIdFor(references[0] ?? messageId);
      // The thread's state is read while the mail is stored: one round trip to Redis, not two.
      const [, previous] = await Promise.all([
        ctx.deliver(
          {
            kind: "message",
            to: user,
            from: fromJid,
            id: stanzaId,
            type: "chat",
            body: shown.body,
            thread,
            ...(shown.attachments.length > 0 ? { attachments: shown.attachments } : {}),
            ...(mail.subject ? { subject: mail.subject } : {}),
            ...(mail.nick ? { nick: mail.nick } : {}),
            ...(mail.delay ? { delay: mail.delay } : {}),
          },
          { dedupeId: `${messageId} ${user}` },
        ),
        threads.get(user, thread),
      ]);
      await threads.add(user, sender, thread, messageId, previous, mail.subject);
    }
    this.metrics.received();
    ctx.log.info(
      { messageId, recipients: users.size, auth: verdict?.summary, size: raw.length },
      "mail received",
    );
  }
}
