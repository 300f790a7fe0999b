/**
 * The SMS adapter: phone numbers as XMPP contacts (`+12025550123@sms.example.org`), through Twilio's
 * Messages API or a compatible one. Users register to choose how they send: their own (dedicated) number,
 * assigned by an administrator, or the shared pool.
 */
import type { CountryCode } from "libphonenumber-js";
import type { Counter } from "prom-client";
import type {
  Adapter,
  AdapterContext,
  AdhocCommand,
  Form,
  FormValues,
  OutboundMessage,
  SendOutcome,
} from "../../src/adapter.js";
import { SendRefused, defineAdapter } from "../../src/adapter.js";
import type { AdapterBaseConfig } from "../../src/config/schema.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import { adminCommands } from "./commands.js";
import { EXAMPLE_E164, countryOf, createSmsCodec } from "./codec.js";
import { smsConfigSchema, type SmsConfig } from "./config.js";
import { RateLimitError, RateLimiter } from "./limits.js";
import { NumberDirectory } from "./numbers.js";
import { checkSegments } from "./segments.js";
import { TwilioSender } from "./twilio-client.js";
import { SentRecords } from "./sent-records.js";
import { STATUS_PATH, mountWebhooks } from "./webhooks.js";

/** The limits could not be read (the store failed for them alone): nothing went to Twilio. */
const LIMITS_UNKNOWN =
  "The gateway could not check your SMS limits, so nothing was sent. Try again in a minute.";

class SmsAdapter implements Adapter {
  readonly gatewayType = "sms";
  readonly name = "SMS";
  readonly requiresRegistration = true;
  readonly codec;
  readonly prompt;
  readonly commands: AdhocCommand[];
  private readonly allowed: ReadonlySet<string>;
  private readonly sender: TwilioSender;
  private state:
    | {
        ctx: AdapterContext;
        numbers: NumberDirectory;
        records: SentRecords;
        limiter: RateLimiter;
        segmentsSent: Counter<string>;
        rateLimited: Counter<string>;
      }
    | undefined;

  constructor(
    private readonly config: AdapterBaseConfig & SmsConfig,
    private readonly authToken: string,
  ) {
    this.codec = createSmsCodec({ defaultCountry: config.defaultCountry as CountryCode });
    this.prompt = {
      desc: `Enter the phone number to text, with + and the country code, or as dialled in ${config.defaultCountry}.`,
      prompt: "Phone number",
      example: EXAMPLE_E164,
    };
    this.allowed = new Set(config.allowedCountries ?? [config.defaultCountry]);
    this.sender = new TwilioSender({
      accountSid: config.twilio.accountSid,
      authToken,
      apiBaseUrl: config.twilio.apiBaseUrl,
      timeoutMs: config.twilio.timeoutSeconds * 1000,
    });
    this.commands = adminCommands(() => this.started().numbers, config.numbers.pool);
  }

  private started() {
    if (!this.state) throw new Error("SMS adapter not started");
    return this.state;
  }

  readonly registration = {
    form: async (user: string, existing: Record<string, string> | null): Promise<Form> => {
      const own = await this.started().numbers.dedicatedOf(user);
      const options = [
        ...(own ? [{ label: `My own number (${own})`, value: "dedicated" }] : []),
        ...(this.config.numbers.pool.length ? [{ label: "A shared number", value: "pool" }] : []),
      ];
      return {
        title: "SMS registration",
        instructions: own
          ? `Your own number is ${own}. Texts to it reach you here.`
          : "Texts go out from a shared number; replies to it reach you here. An administrator can give you your own number.",
        fields: [
          {
            var: "mode",
            type: "list-single",
            label: "Send from",
            required: true,
            options,
            value: existing?.mode ?? options[0]?.value ?? "pool",
          },
        ],
      };
    },
    validate: async (user: string, values: FormValues): Promise<Record<string, string>> => {
      const mode = single(values, "mode");
      if (mode === "dedicated" && !(await this.started().numbers.dedicatedOf(user)))
        throw new GatewayError(
          "not-acceptable",
          "No number is assigned to you; ask an administrator for one.",
        );
      if (mode === "pool" && this.config.numbers.pool.length === 0)
        throw new GatewayError("not-acceptable", "This gateway has no shared numbers; ask an administrator.");
      return { mode };
    },
    remove: (user: string) => this.started().numbers.forget(user),
  };

  // eslint-disable-next-line @typescript-eslint/require-await -- the contract is async; nothing to wait for
  async start(ctx: AdapterContext): Promise<void> {
    // The config's dedicated numbers are read from the config on every lookup, never copied to Redis.
    const numbers = new NumberDirectory(ctx.redis, ctx.key, { ...this.config.numbers, admins: ctx.admins });
    const records = new SentRecords(ctx.redis, ctx.key, ctx.ids);
    this.state = {
      ctx,
      numbers,
      records,
      limiter: new RateLimiter(ctx.redis, ctx.key, this.config.limits),
      segmentsSent: ctx.metrics.counter(
        "segments_sent_total",
        "SMS segments handed to the provider (what Twilio bills; an MMS without text counts as one)",
      ),
      rateLimited: ctx.metrics.counter(
        "rate_limit_refusals_total",
        "Messages refused because the user reached a limit (limit: hour = messages per hour, day = segments per day)",
        ["limit"],
      ),
    };
    if (!ctx.http) {
      ctx.log.warn("the HTTP server is off: inbound SMS and delivery receipts cannot arrive");
      return;
    }
    mountWebhooks({
      ctx,
      http: ctx.http,
      codec: this.codec,
      numbers,
      records,
      accountSid: this.config.twilio.accountSid,
      authToken: this.authToken,
      media: this.config.media,
    });
  }

  async send(message: OutboundMessage): Promise<SendOutcome> {
    const { ctx, numbers, records, limiter, segmentsSent, rateLimited } = this.started();
    const country = countryOf(message.to);
    if (!country || !this.allowed.has(country))
      throw new GatewayError(
        "policy-violation",
        `Texting numbers in ${country ?? "that region"} is not allowed on this gateway ` +
          `(allowed: ${[...this.allowed].join(", ")}).`,
      );
    const mediaUrls = message.attachments.map((a) => a.url);
    for (const url of mediaUrls)
      if (!/^https?:\/\//.test(url))
        throw new GatewayError(
          "not-acceptable",
          "Attachments must be http(s) links (e.g. from HTTP upload).",
        );
    // Conversations sends an upload as body = URL plus the same URL as jabber:x:oob: send it as MMS only.
    const body = mediaUrls.includes(message.body.trim()) ? "" : message.body;
    if (!body && mediaUrls.length === 0)
      throw new GatewayError("not-acceptable", "An SMS needs some text or an attachment.");
    const segments = body ? checkSegments(body, this.config.limits.maxSegments).segments : 1;

    const mode = message.registration?.mode ?? "pool";
    const from =
      mode === "dedicated"
        ? await numbers.dedicatedOf(message.user)
        : await numbers.poolNumberFor(message.user, message.to);
    if (!from)
      throw new GatewayError(
        "not-acceptable",
        "Your number was unassigned; register again to use a shared one.",
      );
    // From the hand-off on Twilio may create the message: a crash or a timeout leaves its fate unknown. The
    // limits are taken in the same write to Redis as the hand-off (one round trip, not two), so a refusal
    // by them comes after it: a SendRefused (RateLimitError is one), since nothing went to Twilio.
    const [limit, handOff] = await Promise.allSettled([
      limiter.take(message.user, segments),
      message.handOff(),
    ]);
    if (limit.status === "rejected") {
      if (limit.reason instanceof RateLimitError) rateLimited.inc({ limit: limit.reason.limit });
      if (limit.reason instanceof RateLimitError || handOff.status === "rejected") throw limit.reason;
      throw new SendRefused("internal-server-error", LIMITS_UNKNOWN, { type: "wait", cause: limit.reason });
    }
    if (handOff.status === "rejected") throw handOff.reason;
    const sent = await this.sender.send({
      from,
      to: message.to,
      body,
      mediaUrls,
      statusCallback: ctx.http?.publicUrlFor(STATUS_PATH),
    });
    segmentsSent.inc(segments);
    // Twilio has the SMS: a store failure now costs its delivery reports, never a second SMS. Not waited for:
    // the record goes in the same write to Redis as the ledger's outcome that follows, and a status callback
    // for this SMS, read on the same connection later, finds it there.
    void records
      .put(sent.sid, {
        from: message.from,
        id: message.id,
        contact: message.toJid,
        receipt: message.receiptRequested ? "1" : "0",
        status: sent.status,
      })
      .catch((err: unknown) =>
        ctx.log.warn(
          { jid: message.user, stanzaId: message.id, sid: sent.sid, err: (err as Error).message },
          "SMS sent, but it was not recorded: its delivery reports will not reach the sender",
        ),
      );
    ctx.log.info(
      { jid: message.user, stanzaId: message.id, sid: sent.sid, segments },
      "SMS handed to the provider",
    );
    return { status: "accepted" };
  }
}

export const smsAdapter = defineAdapter({
  configSchema: smsConfigSchema,
  create: (config, secret) => new SmsAdapter(config, secret(config.twilio.authTokenEnv)),
});
