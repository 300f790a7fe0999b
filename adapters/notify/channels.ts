/**
 * The channels alerts escalate to besides XMPP: SMS through the notify adapter's own Twilio account and
 * sender number (adapters/sms/twilio-client.ts), and email through its own SMTP relay
 * (adapters/email/relay.ts). Both also send verification codes to users' phones and addresses.
 *
 * SMS from one sender number are spread out to `twilio.messagesPerSecond` (Twilio enforces such a rate per
 * number) with a window counter in Redis, so every instance shares the budget.
 */
import { randomUUID } from "node:crypto";
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { Relay } from "../email/relay.js";
import { TwilioSender } from "../sms/twilio-client.js";
import type { NotifyConfig } from "./config.js";

/** A channel the config does not set up (no twilio or email section). */
export class ChannelUnavailable extends Error {
  constructor(readonly channel: "sms" | "email") {
    super(
      `the ${channel} channel is not configured (adapters.notify.${channel === "sms" ? "twilio" : "email"})`,
    );
    this.name = "ChannelUnavailable";
  }
}

/** Longest wait for a slot of the per-number SMS rate before sending anyway is refused. */
export const SMS_RATE_MAX_WAIT_MS = 60_000;

export interface SmsOptions {
  /** Twilio posts the message's status changes here. */
  statusCallback?: string;
}

export interface EmailOptions {
  /** RFC 5322 Message-ID (with its angle brackets), so a retried send keeps its id. */
  messageId?: string;
}

export interface Channels {
  readonly smsEnabled: boolean;
  readonly emailEnabled: boolean;
  /** Texts `to` (E.164); resolves with Twilio's MessageSid. Throws SendRefused / MaybeSent / ChannelUnavailable. */
  sendSms(to: string, body: string, options?: SmsOptions): Promise<{ sid: string; status: string }>;
  /** Mails `to`; resolves once the relay took it (250). Throws SendRefused / MaybeSent / ChannelUnavailable. */
  sendEmail(to: string, subject: string, text: string, options?: EmailOptions): Promise<void>;
  close(): void;
}

export function createChannels(
  config: Pick<NotifyConfig, "twilio" | "email">,
  secret: (envName: string) => string,
  store: { redis: () => RedisClient; key: () => KeyBuilder },
): Channels {
  const twilio = config.twilio;
  const sender = twilio
    ? new TwilioSender({
        accountSid: twilio.accountSid,
        authToken: secret(twilio.authTokenEnv),
        apiBaseUrl: twilio.apiBaseUrl,
        timeoutMs: twilio.timeoutSeconds * 1000,
      })
    : undefined;
  const mail = config.email;
  let relay: Relay | undefined;
  const relayAuth = (): { user: string; pass: string } | undefined =>
    mail?.relay.userEnv && mail.relay.passwordEnv
      ? { user: secret(mail.relay.userEnv), pass: secret(mail.relay.passwordEnv) }
      : undefined;

  /** Waits for a free slot of the sender number's rate (a fixed window shared through Redis). */
  async function smsSlot(from: string, perSecond: number): Promise<void> {
    const windowMs = Math.max(1000, Math.ceil(1000 / perSecond));
    const allowed = Math.max(1, Math.floor((perSecond * windowMs) / 1000));
    const started = Date.now();
    for (;;) {
      const now = Date.now();
      const window = Math.floor(now / windowMs);
      const key = store.key()("smsrate", from, String(window));
      const redis = store.redis();
      const [[, count]] = (await redis
        .multi()
        .incr(key)
        .pexpire(key, windowMs * 2)
        .exec()) as [[null, number], [null, number]];
      if (count <= allowed) return;
      if (now - started > SMS_RATE_MAX_WAIT_MS)
        throw new Error(`no SMS slot for ${from} within ${SMS_RATE_MAX_WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, (window + 1) * windowMs - now));
    }
  }

  return {
    smsEnabled: sender !== undefined,
    emailEnabled: mail !== undefined,
    async sendSms(to, body, options = {}) {
      if (!sender || !twilio) throw new ChannelUnavailable("sms");
      await smsSlot(twilio.from, twilio.messagesPerSecond);
      return sender.send({
        from: twilio.from,
        to,
        body,
        mediaUrls: [],
        statusCallback: options.statusCallback,
      });
    },
    async sendEmail(to, subject, text, options = {}) {
      if (!mail) throw new ChannelUnavailable("email");
      relay ??= new Relay(mail.relay, relayAuth());
      const domain = mail.from.slice(mail.from.lastIndexOf("@") + 1);
      await relay.send({
        from: mail.from,
        to,
        // A header never carries a line break or a control character from outside.
        // eslint-disable-next-line no-control-regex
        subject: subject.replace(/[\u0000-\u001f\u007f]+/g, " "),
        text,
        messageId: options.messageId ?? `<${randomUUID()}@${domain}>`,
        headers: { "Auto-Submitted": "auto-generated" },
      });
    },
    close() {
      relay?.close();
    },
  };
}
