/** The SMS adapter's own config fields (merged under adapters.sms with the shared ones). */
import { z } from "zod";
import { bareJidSchema, envNameSchema } from "../../src/config/schema.js";
import { MAX_SEGMENTS_DEFAULT } from "./segments.js";

/** Largest attachment the media proxy relays (Twilio's MMS limit is 5 MB); config media.maxBytes. */
export const MAX_MEDIA_BYTES = 5 * 1024 * 1024;
/** How long the media proxy waits for the carrier's whole attachment; config media.timeoutSeconds. */
export const MEDIA_TIMEOUT_SECONDS = 30;

const e164 = z.string().regex(/^\+[1-9]\d{7,14}$/, {
  message: "expected an E.164 number, +<country><number>, e.g. +12025550123 (not a national format)",
});
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

/** How long a pool number stays bound to (user, contact) without a message either way: 30 days. */
export const POOL_BINDING_IDLE_SECONDS = 30 * 24 * 3600;

const numbersSchema = z
  .object({
    dedicated: z
      .record(e164, bareJidSchema)
      .default({})
      .describe(
        "number → the one user it belongs to (admins can also assign numbers by ad-hoc command); read " +
          "from here on every lookup, so it outlives a loss of Redis data",
      ),
    pool: z.array(e164).default([]).describe("numbers shared by every user of the pool"),
    poolBindingIdleSeconds: z
      .number()
      .int()
      .min(1)
      .default(POOL_BINDING_IDLE_SECONDS)
      .describe(
        "a pool number bound to (user, contact) is freed after this long without a message either way " +
          "(default 30 days)",
      ),
  })
  .strict()
  .superRefine(({ dedicated, pool }, check) => {
    const seen = new Set<string>();
    pool.forEach((number, i) => {
      if (number in dedicated)
        check.addIssue({
          code: "custom",
          path: ["pool", i],
          message: `${number} is also in numbers.dedicated; a number is either dedicated or shared`,
        });
      if (seen.has(number))
        check.addIssue({ code: "custom", path: ["pool", i], message: `${number} is listed twice` });
      seen.add(number);
    });
    // One user, one own number: it is the one the user sends from.
    const owners = new Map<string, string>();
    for (const [number, user] of Object.entries(dedicated)) {
      const other = owners.get(user.toLowerCase());
      if (other)
        check.addIssue({
          code: "custom",
          path: ["dedicated", number],
          message: `${user} already has ${other}; a user has at most one dedicated number`,
        });
      else owners.set(user.toLowerCase(), number);
    }
  });

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
  numbers: numbersSchema.default({
    dedicated: {},
    pool: [],
    poolBindingIdleSeconds: POOL_BINDING_IDLE_SECONDS,
  }),
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
