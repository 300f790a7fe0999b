/**
 * The notify adapter's own config fields (merged under adapters.notify with the shared ones): API tokens,
 * escalation policies, and the channels alerts escalate to (its own Twilio account and sender number, its
 * own SMTP relay and From address; the shapes are the SMS and email adapters').
 */
import { z } from "zod";
import { envNameSchema } from "../../src/config/schema.js";
import { emailConfigSchema } from "../email/config.js";
import { DEFAULT_PEOPLE_CONFIG, peopleConfigSchema } from "./people/limits.js";

/** Defaults of the limits on one alert; each can be set in config (limits.*). */
export const ALERT_LIMITS = {
  /** Longest alert text, in characters (a longer one is refused with 413). */
  maxTextChars: 4_000,
  /** Longest alert title, in characters (413 beyond). */
  maxTitleChars: 200,
  /** Most recipients one alert names, after groups are expanded (413 beyond). */
  maxRecipients: 100,
};

/** How long an alert, its per-recipient state and its Idempotency-Key answer are kept: 7 days. */
export const ALERT_TTL_SECONDS = 7 * 24 * 3600;
/** How long an Idempotency-Key is honoured (a replay gets the first answer): 24 h, as the API promises. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
/** How often the escalation timers are polled, in milliseconds. */
export const TIMER_POLL_MS = 500;
/**
 * How long a claimed escalation step may run before another instance (or this one after a restart) takes
 * it over: longer than a Twilio send (with its retries) or an SMTP transaction.
 */
export const CLAIM_LEASE_SECONDS = 120;
/**
 * Default rate of alert messages over XMPP, all alerts together: a fan-out to thousands is spread out at it
 * rather than flooding the server (which would throttle or disconnect the component).
 */
export const XMPP_PER_SECOND = 100;
/** Default rate of alert mail handed to the relay, all alerts together (relays throttle bursts). */
export const EMAIL_PER_SECOND = 10;
/** Default rate of SMS from one sender number (Twilio queues beyond 1 per second for a long code). */
export const SMS_PER_SECOND = 1;

const e164 = z.string().regex(/^\+[1-9]\d{7,14}$/, {
  message: "expected an E.164 number, +<country><number>, e.g. +12025550123",
});

/** A policy, group or token name: letters, digits, '.', '_' and '-'. */
export const nameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
  message: "expected a name of letters, digits, '.', '_' or '-' (at most 64)",
});

export const CHANNELS = ["xmpp", "sms", "email"] as const;
export type Channel = (typeof CHANNELS)[number];

const stepSchema = z
  .object({
    channel: z.enum(CHANNELS),
    waitSeconds: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3600)
      .default(0)
      .describe("how long this step waits for its condition (until) before the next step runs"),
    until: z
      .enum(["delivered", "acknowledged"])
      .optional()
      .describe(
        "what ends the escalation at this step: the message delivered (default for xmpp: an XEP-0184 " +
          "receipt) or the alert acknowledged (default for sms and email)",
      ),
  })
  .strict();
export type Step = z.output<typeof stepSchema>;

export const policySchema = z
  .object({
    steps: z.array(stepSchema).min(1).max(10),
    criticalAllAtOnce: z
      .boolean()
      .default(true)
      .describe("a critical alert goes out on every step's channel at once"),
    displayedIsAck: z
      .boolean()
      .default(false)
      .describe("an XEP-0333 displayed marker from the recipient acknowledges the alert"),
    group: z
      .enum(["all", "first"])
      .default("all")
      .describe("a group named as recipient: every member, or only the first (the one on call)"),
  })
  .strict();
export type Policy = z.output<typeof policySchema>;

export const DEFAULT_POLICY: Policy = {
  steps: [
    { channel: "xmpp", waitSeconds: 60 },
    { channel: "sms", waitSeconds: 300 },
    { channel: "email", waitSeconds: 0 },
  ],
  criticalAllAtOnce: true,
  displayedIsAck: false,
  group: "all",
};

const tokenSchema = z
  .object({
    name: nameSchema.describe("the token's name: the alerts' source (<name>@<domain>) and in metrics"),
    tokenEnv: envNameSchema.describe("environment variable holding the bearer token"),
    recipients: z
      .array(z.string().min(1))
      .default([])
      .describe("bare JIDs, or domains (anyone there), this token may alert"),
    groups: z.array(nameSchema).default([]).describe("groups this token may alert"),
    defaultRecipients: z
      .array(z.string().min(1))
      .default([])
      .describe("who Alertmanager notifications through this token reach (JIDs and group names)"),
  })
  .strict();
export type TokenConfig = z.output<typeof tokenSchema>;

export const notifyConfigSchema = z.object({
  tokens: z.array(tokenSchema).default([]).describe("bearer tokens of the alert API"),
  policies: z.record(nameSchema, policySchema).default({ default: DEFAULT_POLICY }),
  defaultPolicy: nameSchema.default("default").describe("the policy of an alert that names none"),
  twilio: z
    .object({
      accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, {
        message: "expected a Twilio Account SID (AC followed by 32 hex digits)",
      }),
      authTokenEnv: envNameSchema.describe("environment variable holding the auth token"),
      apiBaseUrl: z
        .string()
        .regex(/^https?:\/\/[^/]+$/, { message: "expected a base URL such as https://api.twilio.com" })
        .optional(),
      timeoutSeconds: z.number().int().min(1).max(120).default(15),
      from: e164.describe("the number alerts are texted from"),
      messagesPerSecond: z
        .number()
        .min(0.01)
        .max(1000)
        .default(SMS_PER_SECOND)
        .describe("most SMS sent from that number per second (Twilio enforces one per number)"),
    })
    .strict()
    .optional()
    .describe("SMS escalation; without it the sms steps are skipped"),
  email: z
    .object({
      relay: emailConfigSchema.shape.relay,
      from: z.email().describe("the From address of alert mail"),
    })
    .strict()
    .optional()
    .describe("email escalation; without it the email steps are skipped"),
  limits: z
    .object({
      maxTextChars: z.number().int().min(1).max(100_000).default(ALERT_LIMITS.maxTextChars),
      maxTitleChars: z.number().int().min(1).max(1_000).default(ALERT_LIMITS.maxTitleChars),
      maxRecipients: z.number().int().min(1).max(100_000).default(ALERT_LIMITS.maxRecipients),
    })
    .strict()
    .default(ALERT_LIMITS),
  timers: z
    .object({
      pollMs: z.number().int().min(50).max(60_000).default(TIMER_POLL_MS),
      claimLeaseSeconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(CLAIM_LEASE_SECONDS)
        .describe("a step claimed by an instance that died is taken over after this long"),
    })
    .strict()
    .default({ pollMs: TIMER_POLL_MS, claimLeaseSeconds: CLAIM_LEASE_SECONDS }),
  rates: z
    .object({
      xmppPerSecond: z
        .number()
        .min(0.01)
        .max(10_000)
        .default(XMPP_PER_SECOND)
        .describe("most alert messages sent over XMPP per second, by all instances together"),
      emailPerSecond: z
        .number()
        .min(0.01)
        .max(1_000)
        .default(EMAIL_PER_SECOND)
        .describe("most alert mails handed to the relay per second, by all instances together"),
    })
    .strict()
    .default({ xmppPerSecond: XMPP_PER_SECOND, emailPerSecond: EMAIL_PER_SECOND })
    .describe(
      "how fast one alert to many recipients goes out on each channel (SMS: twilio.messagesPerSecond); " +
        "a step over the rate stays due and goes out in order as the rate allows",
    ),
  people: peopleConfigSchema.default(DEFAULT_PEOPLE_CONFIG),
});

export type NotifyConfig = z.output<typeof notifyConfigSchema>;
