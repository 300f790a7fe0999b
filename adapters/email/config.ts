/** The email adapter's own config fields (merged under adapters.email with the shared ones). */
import { z } from "zod";
import { envNameSchema, hostnameSchema } from "../../src/config/schema.js";

/** Defaults for the inbound listener; each can be set in config. */
export const INBOUND_DEFAULTS = {
  /** Bind address: loopback unless an operator exposes the listener (or puts an MTA in front of it). */
  host: "127.0.0.1",
  /** An unprivileged port; the MX or a port forward points here. */
  port: 2525,
  /** Largest mail accepted, in bytes (RFC 1870 SIZE is advertised with it): 10 MiB. */
  maxBytes: 10 * 1024 * 1024,
  /** Most RCPT TO per mail; more get 452 (RFC 5321 §4.5.3.1.10). */
  maxRecipients: 50,
};

/** Defaults for the relay connection. */
export const RELAY_DEFAULTS = {
  /** Submission port (RFC 6409). */
  port: 587,
  /** Pooled SMTP connections kept open to the relay. */
  maxConnections: 5,
  /** How long to wait for the relay to connect or answer a command. */
  timeoutSeconds: 30,
};

export const emailConfigSchema = z.object({
  mailDomain: hostnameSchema.describe(
    "the domain of users' addresses, e.g. mail.example.org (its MX must reach the inbound listener)",
  ),
  relay: z
    .object({
      host: hostnameSchema.describe("SMTP relay that sends the users' mail"),
      port: z.number().int().min(1).max(65535).default(RELAY_DEFAULTS.port),
      secure: z.boolean().default(false).describe("TLS from the first byte (port 465)"),
      starttls: z
        .boolean()
        .default(true)
        .describe("require STARTTLS (RFC 3207) when not secure; false only for a relay on loopback"),
      userEnv: envNameSchema.optional().describe("environment variable holding the relay user name"),
      passwordEnv: envNameSchema.optional().describe("environment variable holding the relay password"),
      maxConnections: z.number().int().min(1).max(100).default(RELAY_DEFAULTS.maxConnections),
      timeoutSeconds: z.number().int().min(1).max(600).default(RELAY_DEFAULTS.timeoutSeconds),
    })
    .strict()
    .refine((relay) => (relay.userEnv === undefined) === (relay.passwordEnv === undefined), {
      message: "set both userEnv and passwordEnv (relay authentication), or neither",
    }),
  inbound: z
    .object({
      host: z.string().min(1).default(INBOUND_DEFAULTS.host).describe("address the SMTP listener binds"),
      port: z.number().int().min(1).max(65535).default(INBOUND_DEFAULTS.port),
      maxBytes: z
        .number()
        .int()
        .min(1024)
        .default(INBOUND_DEFAULTS.maxBytes)
        .describe("largest mail accepted"),
      maxRecipients: z
        .number()
        .int()
        .min(1)
        .max(1000)
        .default(INBOUND_DEFAULTS.maxRecipients)
        .describe("most recipients per mail"),
      tls: z
        .object({
          certFile: z.string().min(1).describe("PEM certificate chain for the mail domain"),
          keyFile: z.string().min(1).describe("PEM private key of that certificate"),
        })
        .strict()
        .optional()
        .describe("offer STARTTLS (RFC 3207) to sending servers; without it mail arrives unencrypted"),
    })
    .strict()
    .default(INBOUND_DEFAULTS),
});

export type EmailConfig = z.output<typeof emailConfigSchema>;
