/**
 * The email adapter: email addresses as XMPP contacts (`friend\40example.com@mail.example.org`). Users
 * register an alias on the mail domain; what they write leaves as mail from it through the SMTP relay, and
 * mail to it arrives through the gateway's own SMTP listener, threaded back into the same conversation.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import type Mail from "nodemailer/lib/mailer/index.js";
import MailComposer from "nodemailer/lib/mail-composer/index.js";
import type {
  Adapter,
  AdapterContext,
  AdhocCommand,
  Form,
  FormValues,
  OutboundMessage,
  SendOutcome,
} from "../../src/adapter.js";
import { defineAdapter, SendRefused } from "../../src/adapter.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import { AliasDirectory, defaultAlias, normaliseAlias } from "./aliases.js";
import { dnsResolver } from "./auth.js";
import { BOUNCE_PREFIX, BounceStore } from "./bounces.js";
import { adminCommands } from "./commands.js";
import { EXAMPLE_ADDRESS, emailCodec } from "./codec.js";
import { composeMail } from "./compose.js";
import { emailConfigSchema, type EmailConfig } from "./config.js";
import { DirectoryStore } from "./file-store.js";
import { MailFiles } from "./files.js";
import { InboundListener, SmtpReply } from "./inbound.js";
import { emailMetrics, NO_METRICS, type EmailMetrics } from "./metrics.js";
import { Relay } from "./relay.js";
import { ThreadStore } from "./threads.js";

/** Longest display name (it goes in the From header, RFC 2047-encoded by nodemailer). */
export const MAX_DISPLAY_NAME_CHARS = 64;

/** A display name the From header can carry: no line breaks or controls, within MAX_DISPLAY_NAME_CHARS. */
export function checkDisplayName(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\u2028\u2029]/.test(name))
    throw new GatewayError(
      "not-acceptable",
      "The display name cannot contain line breaks or control characters.",
    );
  if ([...name].length > MAX_DISPLAY_NAME_CHARS)
    throw new GatewayError(
      "not-acceptable",
      `The display name is at most ${MAX_DISPLAY_NAME_CHARS} characters.`,
    );
  return name;
}

class EmailAdapter implements Adapter {
  readonly gatewayType = "smtp";
  readonly name = "Email";
  readonly requiresRegistration = true;
  readonly codec = emailCodec;
  readonly prompt = {
    desc: "Enter the email address to write to.",
    prompt: "Email address",
    example: EXAMPLE_ADDRESS,
  };
  readonly commands: AdhocCommand[];
  private readonly relay: Relay;
  private metrics: EmailMetrics = NO_METRICS;
  private state:
    | {
        ctx: AdapterContext;
        aliases: AliasDirectory;
        threads: ThreadStore;
        bounces: BounceStore;
        inbound: InboundListener;
        files: MailFiles | undefined;
      }
    | undefined;

  constructor(
    private readonly config: AdapterBaseConfig & EmailConfig,
    relayAuth: { user: string; pass: string } | undefined,
    dkimKey: string | undefined,
  ) {
    const dkim =
      config.dkim && dkimKey
        ? {
            domainName: config.dkim.domain ?? config.mailDomain,
            keySelector: config.dkim.selector,
            privateKey: dkimKey,
          }
        : undefined;
    this.relay = new Relay(config.relay, relayAuth, {
      ...(dkim ? { dkim } : {}),
      onRetry: () => this.metrics.relayRetry(),
    });
    this.commands = adminCommands(() => this.started().aliases, config.mailDomain);
  }

  private started() {
    if (!this.state) throw new Error("email adapter not started");
    return this.state;
  }

  readonly registration = {
    form: (user: string, existing: Record<string, string> | null): Form => {
      const alias = existing?.alias ?? defaultAlias(user);
      return {
        title: "Email registration",
        instructions:
          `Choose your address on ${this.config.mailDomain}: mail to it reaches you here, and what you ` +
          "write to email contacts is sent from it.",
        fields: [
          {
            var: "alias",
            type: "text-single",
            label: `Address (the part before @${this.config.mailDomain})`,
            // Not required: left empty, it is the JID's localpart (when that is a valid address).
            desc: "Empty: your own user name.",
            ...(alias ? { value: alias } : {}),
          },
          {
            var: "name",
            type: "text-single",
            label: "Display name",
            ...(existing?.name ? { value: existing.name } : {}),
          },
        ],
      };
    },
    validate: async (user: string, values: FormValues): Promise<Record<string, string>> => {
      const { ctx, aliases } = this.started();
      const alias = normaliseAlias(single(values, "alias") || (defaultAlias(user) ?? ""));
      const name = checkDisplayName(single(values, "name"));
      await aliases.claim(alias, user);
      const previous = (await ctx.registrations.get(user))?.alias;
      if (previous && previous !== alias) await aliases.release(previous, user);
      return { alias, name };
    },
    remove: async (user: string): Promise<void> => {
      const { ctx, aliases } = this.started();
      const alias = (await ctx.registrations.get(user))?.alias;
      if (alias) await aliases.release(alias, user);
    },
  };

  async start(ctx: AdapterContext): Promise<void> {
    const aliases = new AliasDirectory(ctx.redis, ctx.key);
    const threads = new ThreadStore(ctx.ids);
    const bounces = new BounceStore(ctx.ids, this.config.bounces.ttlSeconds);
    this.metrics = emailMetrics(ctx.metrics);
    // Without the HTTP server, attachments are named in the text and quoted text is left in.
    const files = ctx.http
      ? new MailFiles(
          ctx,
          ctx.http,
          new DirectoryStore(path.resolve(this.config.files.dir)),
          this.config.inbound.filesTtlSeconds,
          this.config.files,
        )
      : undefined;
    files?.route();
    files?.startSweeping();
    const inbound = new InboundListener({
      ctx,
      config: this.config,
      aliases,
      threads,
      bounces,
      ...(files ? { files: (file, owners) => files.put(file, owners) } : {}),
      auth: { resolver: dnsResolver(this.config.auth.dnsServers), onDmarcFail: this.config.auth.onDmarcFail },
      metrics: this.metrics,
    });
    await inbound.listen();
    this.state = { ctx, aliases, threads, bounces, inbound, files };
  }

  async stop(): Promise<void> {
    this.relay.close();
    this.state?.files?.stop();
    await this.state?.inbound.close();
  }

  /**
   * Messages from one user to one contact go out one after the other, so each mail answers the one before
   * (two lines typed quickly must not both reply to the same parent). Holds only messages in flight.
   */
  private readonly inFlight = new Map<string, Promise<unknown>>();

  send(message: OutboundMessage): Promise<SendOutcome> {
    const key = `${message.user} ${message.to.toLowerCase()}`;
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(() => this.sendNow(message));
    const tail = result.catch(() => undefined);
    this.inFlight.set(key, tail);
    void tail.then(() => {
      if (this.inFlight.get(key) === tail) this.inFlight.delete(key);
    });
    return result;
  }

  /** Mail to another user's alias goes straight to their inbox, as if it had come in over SMTP. */
  private async deliverLocally(mail: Mail.Options, message: OutboundMessage): Promise<void> {
    const to = message.to;
    const { inbound } = this.started();
    const raw = await new MailComposer(mail).compile().build();
    await message.handOff();
    try {
      await inbound.accept(raw, [to]);
    } catch (err) {
      const reply = err instanceof SmtpReply ? err : new SmtpReply(451, "4.3.0 Not stored");
      // The inbox answered no (as SMTP would): nothing was delivered.
      if (reply.responseCode >= 500)
        throw new SendRefused("item-not-found", `${to} could not take the mail: ${reply.message}`);
      throw new SendRefused("remote-server-timeout", `${to} could not take the mail now; try again later.`);
    }
  }

  private async sendNow(message: OutboundMessage): Promise<SendOutcome> {
    const { ctx, threads, aliases, bounces } = this.started();
    const alias = message.registration?.alias;
    if (!alias)
      throw new GatewayError("registration-required", `Register with ${ctx.domain} to choose your address.`);
    // XEP-0201: the thread the user continues. Without one (most chat clients), the chat goes on as one
    // conversation: the latest with this contact, unless a new <subject> starts a new one. Read together with
    // the alias's owner: one round trip to Redis, not two.
    const [owner, latest] = await Promise.all([
      aliases.owner(alias),
      message.thread || message.subject ? null : threads.latest(message.user, message.to),
    ]);
    // Mail never leaves from an address that is no longer the user's (an administrator took it back).
    if (owner !== message.user)
      throw new GatewayError(
        "registration-required",
        `${alias}@${this.config.mailDomain} is no longer your address; register with ${ctx.domain} again.`,
      );
    const fromAddress = `${alias}@${this.config.mailDomain}`;
    const known = message.thread ?? latest;
    const thread = known ?? randomUUID();
    const state = known ? await threads.get(message.user, thread) : null;
    const messageId = `<${randomUUID()}@${this.config.mailDomain}>`;
    const mail = composeMail({
      fromName: message.registration?.name,
      fromAddress,
      to: message.to,
      subject: message.subject,
      body: message.body,
      attachments: message.attachments,
      messageId,
      references: state?.refs ?? [],
      threadSubject: state?.subject,
    });
    if (message.to.toLowerCase().endsWith(`@${this.config.mailDomain}`)) {
      await this.deliverLocally(mail, message);
      this.metrics.sent("local");
    } else {
      // VERP: the envelope sender names this mail, so a bounce is tied to it (bounces.ts). Its record goes
      // to Redis in the same write as the hand-off (one round trip, not two): if it fails while the hand-off
      // did not, the mail still goes, and only its bounces are lost (they are logged and dropped).
      const bounce = bounces.create({
        user: message.user,
        sender: message.from,
        contact: message.toJid,
        to: message.to,
        stanzaId: message.id,
        messageId,
      });
      const bounceStored = bounce.stored.catch((err: unknown) => {
        ctx.log.warn(
          { err, jid: message.user, messageId },
          "bounce record not stored: bounces of this mail are lost",
        );
      });
      mail.envelope = { from: `${BOUNCE_PREFIX}${bounce.token}@${this.config.mailDomain}`, to: message.to };
      // The SMTP transaction starts: from here on the relay may take the mail.
      await message.handOff();
      try {
        await this.relay.send(mail);
      } catch (err) {
        const permanent = err instanceof GatewayError && err.condition !== "remote-server-timeout";
        this.metrics.sent(permanent ? "refused" : "failed");
        throw err;
      } finally {
        await bounceStored;
      }
      this.metrics.sent("relayed");
    }
    const subject = typeof mail.subject === "string" ? mail.subject : undefined;
    // The mail is gone: a lost thread record only costs the threading of replies, never a second mail. Not
    // waited for: the records go in the same write to Redis as the ledger's outcome that follows, and the
    // user's next mail, read on the same connection later, finds them there.
    void threads.add(message.user, message.to, thread, messageId, state, subject).catch((err: unknown) => {
      ctx.log.warn({ err, jid: message.user, messageId }, "mail sent, but its thread was not recorded");
    });
    ctx.log.info({ jid: message.user, stanzaId: message.id, messageId }, "mail accepted by the relay");
    // The relay's 250 is the delivery the gateway can vouch for: the core sends the XEP-0184 receipt.
    return { status: "delivered" };
  }
}

export const emailAdapter = defineAdapter({
  configSchema: emailConfigSchema,
  create: (config, secret) => {
    const { userEnv, passwordEnv } = config.relay;
    const auth = userEnv && passwordEnv ? { user: secret(userEnv), pass: secret(passwordEnv) } : undefined;
    const dkimKey = config.dkim ? secret(config.dkim.privateKeyEnv) : undefined;
    return new EmailAdapter(config, auth, dkimKey);
  },
});
