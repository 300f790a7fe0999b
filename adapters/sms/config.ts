/** The SMS adapter's own config fields (merged under adapters.sms with the shared ones). */
import { z } from "zod";
import { bareJidSchema, envNameSchema } from "../../src/config/schema.js";
import { MAX_SEGMENTS_DEFAULT } from "./segments.js";
import { MAX_MEDIA_BYTES, MEDIA_TIMEOUT_SECONDS } from "./webhooks.js";

const e164 = z
  .string()
  .regex(/^\+[1-9]\d{7,14}$/, { message: "expected an E.164 number such as +15551234567" });
const country = z.string().regex(/^[A-Z]{2}$/, { message: "expected an ISO 3166 country code such as US" });

/** Defaults for the per-user limits; each can be set in config. */
export const DEFAULT_LIMITS = {
  /** Messages one user may send per hour (a runaway client or a stolen account cannot drain the budget). */
  messagesPerHour: 60,
  /** SMS segments (what Twilio bills) one user may send per day. */
  segmentsPerDay: 300,
  /** Longest message, in segments. */
  maxSegments: MAX_SEGMENTS_DEFAULT,
};

export const smsConfigSchema = z.object({
  twilio: z
    .object({
      accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, {
        message: "expected a Twilio Account SID (AC followed by 32 hex digits)",
      }),
      authTokenEnv: envNameSchema
        .default("TWILIO_AUTH_TOKEN")
        .describe("environment variable holding the auth token"),
      apiBaseUrl: z
        .string()
        .regex(/^https?:\/\/[^/]+$/, { message: "expected a base URL such as https://api.twilio.com" })
        .optional()
        .describe("a Twilio-compatible API (SignalWire…, or a local test server); default Twilio's own"),
      timeoutSeconds: z.number().int().min(1).max(120).default(15),
    })
    .strict(),
  defaultCountry: country.default("US").describe("country of phone numbers typed without +country code"),
  allowedCountries: z
    .array(country)
    .optional()
    .describe("destination countries users may text (default: only defaultCountry)"),
  numbers: z
    .object({
      dedicated: z
        .record(e164, bareJidSchema)
        .default({})
        .describe("number → the one user it belongs to (admins can also assign numbers by ad-hoc command)"),
      pool: z.array(e164).default([]).describe("numbers shared by every user of the pool"),
    })
    .strict()
    .default({ dedicated: {}, pool: [] }),
  limits: z
    .object({
      messagesPerHour: z.number().int().min(1).default(DEFAULT_LIMITS.messagesPerHour),
      segmentsPerDay: z.number().int().min(1).default(DEFAULT_LIMITS.segmentsPerDay),
      maxSegments: z.number().int().min(1).max(10).default(DEFAULT_LIMITS.maxSegments),
    })
    .strict()
    .default(DEFAULT_LIMITS),
  media: z
    .object({
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(MAX_MEDIA_BYTES)
        .describe("largest inbound MMS attachment the media proxy relays"),
      timeoutSeconds: z
        .number()
        .int()
        .min(1)
        .max(600)
        .default(MEDIA_TIMEOUT_SECONDS)
        .describe("how long the media proxy waits for the carrier's whole attachment"),
    })
    .strict()
    .default({ maxBytes: MAX_MEDIA_BYTES, timeoutSeconds: MEDIA_TIMEOUT_SECONDS })
    .describe("the proxy serving inbound MMS attachments on the public listener"),
});

export type SmsConfig = z.output<typeof smsConfigSchema>;
