/** The email adapter's own config fields (merged under adapters.email with the shared ones). */
import { isIPv6 } from "node:net";
import { z } from "zod";
import type { ConfigListener } from "../../src/config/listeners.js";
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
  /** How long attachments (and the full text of shortened mails) stay reachable by their links: 30 days. */
  filesTtlSeconds: 30 * 24 * 3600,
};

/** Defaults for where inbound mail files go and how much space they may take. */
export const FILES_DEFAULTS = {
  /** Directory of the files, relative to the gateway's working directory unless absolute. */
  dir: "data/files",
  /** Bytes of files one alias may hold at once: 100 MiB. */
  maxBytesPerAlias: 100 * 1024 * 1024,
  /** Bytes of files all aliases together may hold at once: 2 GiB. */
  maxBytesTotal: 2 * 1024 * 1024 * 1024,
};

/** Defaults for the relay connection. */
export const RELAY_DEFAULTS = {
  /** Submission port (RFC 6409). */
  port: 587,
  /** Pooled SMTP connections kept open to the relay. */
  maxConnections: 5,
  /** How long to wait for the relay to connect or answer a command. */
  timeoutSeconds: 30,
  /**
   * Mails sent over one connection before it is replaced: Exim's own limit per connection
   * (smtp_accept_max_per_connection), and 10 times nodemailer's, whose pool waits 100 ms after retiring a
   * connection before it hands the mails queued behind it to another.
   */
  messagesPerConnection: 1000,
};

/** A DNS server as node:dns takes it: IPv4 or IPv6, optionally with a port (IPv6 then in brackets). */
const DNS_SERVER =
  /^(?:\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?|[0-9a-f:]*:[0-9a-f:]*|\[[0-9a-f:]*:[0-9a-f:]*\](?::\d{1,5})?)$/i;

/** An IPv6 literal as written in a config: bare (`::1`) or in URL brackets (`[::1]`). */
const unbracket = (host: string) => host.replace(/^\[(.*)\]$/, "$1");

/** The relay's host as node:net takes it: an IPv6 literal without its brackets, anything else as given. */
export function relayAddress(host: string): string {
  return isIPv6(unbracket(host)) ? unbracket(host) : host;
}

/** A host name (which includes IPv4 addresses) or an IPv6 literal, with or without brackets. */
const relayHostSchema = z
  .string()
  .refine((host) => hostnameSchema.safeParse(host).success || isIPv6(unbracket(host)), {
    message:
      "expected a host name such as smtp.example.org, an IPv4 address, or an IPv6 address (::1 or [::1])",
  });

/** A bounce (RFC 3464 DSN) is tied to its mail for a week: retries of a deferred mail last up to 5 days. */
export const BOUNCE_TTL_SECONDS = 7 * 24 * 3600;

export const emailConfigSchema = z.object({
  mailDomain: hostnameSchema.describe(
    "the domain of users' addresses, e.g. mail.example.org (its MX must reach the inbound listener)",
  ),
  relay: z
    .object({
      host: relayHostSchema.describe(
        "SMTP relay that sends the users' mail: a host name, an IPv4 address or an IPv6 address (::1 or [::1])",
      ),
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
      messagesPerConnection: z
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .default(RELAY_DEFAULTS.messagesPerConnection)
        .describe(
          "mails sent over one connection before a new one is opened; lower it to the relay's own limit " +
            "(Microsoft Exchange: 20), above which it refuses more mail on a connection",
        ),
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
      filesTtlSeconds: z
        .number()
        .int()
        .min(60)
        .default(INBOUND_DEFAULTS.filesTtlSeconds)
        .describe("how long the links to attachments and full texts of inbound mail work"),
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
  files: z
    .object({
      dir: z
        .string()
        .min(1)
        .default(FILES_DEFAULTS.dir)
        .describe(
          "directory of attachments and full texts of inbound mail (relative to the working directory " +
            "unless absolute); shared by every instance, or each serves only its own files",
        ),
      maxBytesPerAlias: z
        .number()
        .int()
        .min(0)
        .default(FILES_DEFAULTS.maxBytesPerAlias)
        .describe("bytes of files one alias may hold; a file beyond it is replaced by a note"),
      maxBytesTotal: z
        .number()
        .int()
        .min(0)
        .default(FILES_DEFAULTS.maxBytesTotal)
        .describe("bytes of files all aliases together may hold; a file beyond it is replaced by a note"),
    })
    .strict()
    .default(FILES_DEFAULTS)
    .describe("where inbound mail files are kept (never in Redis) and how much space they may take"),
  auth: z
    .object({
      dnsServers: z
        .array(
          z
            .string()
            .regex(
              DNS_SERVER,
              'an IP address, optionally with a port: "10.0.0.53", "127.0.0.1:5353", "[::1]:53"',
            ),
        )
        .min(1)
        .optional()
        .describe(
          'DNS servers for SPF, DKIM and DMARC lookups ("10.0.0.53" or "127.0.0.1:5353"); default: the system\'s',
        ),
      onDmarcFail: z
        .enum(["mark", "reject"])
        .default("mark")
        .describe(
          "mail failing DMARC: mark (delivered with a warning that the sender is not verified) or reject (550)",
        ),
    })
    .strict()
    .default({ onDmarcFail: "mark" })
    .describe("checking who really sent inbound mail (SPF, DKIM, DMARC)"),
  dkim: z
    .object({
      selector: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]*$/i, {
          message: "expected a selector of letters, digits, '.', '_' or '-' such as mail2026",
        })
        .describe("DKIM selector (its key is <selector>._domainkey.<domain>)"),
      privateKeyEnv: envNameSchema.describe("environment variable holding the PEM private key"),
      domain: hostnameSchema.optional().describe("signing domain; default: mailDomain"),
    })
    .strict()
    .optional()
    .describe("sign outbound mail with DKIM (RFC 6376)"),
  bounces: z
    .object({
      ttlSeconds: z
        .number()
        .int()
        .min(3600)
        .default(BOUNCE_TTL_SECONDS)
        .describe("how long a bounce for a sent mail is still tied to it"),
    })
    .strict()
    .default({ ttlSeconds: BOUNCE_TTL_SECONDS }),
});

export type EmailConfig = z.output<typeof emailConfigSchema>;

/** The TCP listeners this adapter opens (its SMTP listener), for the config's clash check (exit 2). */
export function emailListeners({ inbound }: EmailConfig): ConfigListener[] {
  return [{ name: "adapters.email.inbound.port", host: inbound.host, port: inbound.port }];
}
