/**
 * The limits of alert recipients' self-service (contacts, verification codes) and of the admins' notices.
 * Each is a named default; the notify adapter's config may override them under `people` (peopleConfigSchema).
 */
import { z } from "zod";

/** How long a verification code stays valid after it was sent. */
export const CODE_TTL_SECONDS = 600;
/** Digits of a verification code (a 6-digit code: one chance in a million a guess). */
export const CODE_DIGITS = 6;
/** Wrong codes accepted for one pending code before it is void (a new code must be requested). */
export const MAX_CODE_ATTEMPTS = 5;
/**
 * Codes one user may have sent in an hour, SMS and email together: bounds what one account can make the
 * gateway spend on texts to arbitrary numbers.
 */
export const CODES_PER_USER_PER_HOUR = 3;
/** Codes one phone number or address may receive in a day, whoever asks: nobody can flood a stranger. */
export const CODES_PER_ADDRESS_PER_DAY = 5;
/** Code SMS the whole gateway sends in an hour: the ceiling of the cost, whatever many accounts do. */
export const CODE_SMS_PER_HOUR = 100;
/** Notices the admin page's composer may send in an hour (each may reach everyone). */
export const NOTICES_PER_HOUR = 10;
/** Most members of one group (an on-call rotation, or a team to alert at once). */
export const MAX_GROUP_MEMBERS = 10_000;
/** Most groups. */
export const MAX_GROUPS = 1_000;

export const peopleConfigSchema = z
  .object({
    codeTtlSeconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(CODE_TTL_SECONDS)
      .describe("how long a verification code stays valid"),
    codesPerUserPerHour: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(CODES_PER_USER_PER_HOUR)
      .describe("verification codes (SMS and email) one user may request in an hour"),
    codesPerAddressPerDay: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(CODES_PER_ADDRESS_PER_DAY)
      .describe("verification codes one phone number or email address may receive in a day"),
    codeSmsPerHour: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(CODE_SMS_PER_HOUR)
      .describe("verification SMS the whole gateway may send in an hour"),
    noticesPerHour: z
      .number()
      .int()
      .min(1)
      .max(1_000)
      .default(NOTICES_PER_HOUR)
      .describe("notices the admin page may send in an hour"),
  })
  .strict()
  .describe("Alert recipients: verification codes and the admins' notices.");

export type PeopleConfig = z.output<typeof peopleConfigSchema>;

/** The defaults, for a notify adapter whose config has no `people` block. */
export const DEFAULT_PEOPLE_CONFIG: PeopleConfig = peopleConfigSchema.parse({});
