/** The IRC adapter's own config fields (merged under adapters.irc with the shared ones). */
import { z } from "zod";
import type { LinkOptions } from "./link.js";
import type { SessionSettings } from "./session-types.js";
import { checkServer } from "./codec.js";
import {
  DEFAULT_OUTAGE_NOTICE_SECONDS,
  DEFAULT_RECONNECT_MAX_ATTEMPTS,
  DEFAULT_RECONNECT_MAX_SECONDS,
} from "./reconnect.js";
import { isSupportedCharset, MAX_LINES_PER_MESSAGE } from "./split.js";

/** RFC 7194 §2: 6697 is the port for IRC over TLS. */
export const TLS_PORT = 6697;
/** RFC 1459 §1 / IANA: 6667 is the customary plain-text IRC port. */
export const PLAIN_PORT = 6667;
/** Seconds an IRC connection stays open after the user left every channel, so a quick rejoin keeps it. */
export const DEFAULT_GRACE_SECONDS = 60;
/** IRC connections one gateway opens to one IRC server (networks cap connections per IP, ~30 on Libera). */
export const DEFAULT_MAX_CONNECTIONS_PER_SERVER = 25;
/** Seconds to wait for an IRC server to accept the connection and register the nick. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 20;
/**
 * Flood control (a token bucket per connection): pause between two lines once the burst is spent. About one
 * a second is what servers tolerate without an "Excess Flood" kill (biboumi: 1/s after a burst; matterbridge
 * 1.3 s).
 */
export const DEFAULT_LINE_DELAY_MS = 1000;
/** Lines a connection may send at once before the pause applies (biboumi: 10). */
export const DEFAULT_FLOOD_BURST = 10;
/** Longest pause between lines an admin may set (a floor of a minute a line is already unusable). */
export const MAX_LINE_DELAY_MS = 60_000;
/**
 * Lines one connection holds waiting for flood control; a message that would go beyond is refused with
 * resource-constraint instead of the queue (and the user's wait) growing without end. At least one message
 * of the most lines a body may split into must fit.
 */
export const DEFAULT_MAX_QUEUED_LINES = 100;
/** Where NickServ is by default: on the network's services server, named services.* on most networks. */
export const DEFAULT_SERVICES = { nick: "NickServ", server: "services.*" } as const;
/**
 * Seconds a server's channel list (LIST) is kept in Redis: disco#items within it are answered from the copy,
 * so many users browsing a network cost it one LIST (a big network's list is tens of thousands of lines).
 */
export const DEFAULT_CHANNEL_LIST_CACHE_SECONDS = 300;
/** Seconds of silence from the IRC server while it sends its LIST before the listing fails as timed out. */
export const DEFAULT_CHANNEL_LIST_TIMEOUT_SECONDS = 30;
/** How IRC text that is not valid UTF-8 is read (biboumi: latin-1; WHATWG reads latin-1 as windows-1252). */
export const DEFAULT_FALLBACK_CHARSET = "windows-1252";

/** Days a channel line stays in the archive (XEP-0313 MAM and join history). */
export const DEFAULT_ARCHIVE_MAX_DAYS = 14;
/** Lines one channel's archive keeps at most (older ones go first; trimmed in whole blocks, see archive.ts). */
export const DEFAULT_ARCHIVE_MAX_LINES = 20_000;
/** Lines of history sent on a join whose presence has no `<history/>` (biboumi's max_history_length: 20). */
export const DEFAULT_HISTORY_LINES = 20;

/** Channel archive settings; each may be set per server under addresses.<server>.archive. */
const archiveOverride = z
  .object({
    enabled: z.boolean().optional().describe("archive the channels of this server"),
    maxDays: z.number().min(0).max(3650).optional(),
    maxLines: z.number().int().min(1).max(10_000_000).optional(),
    historyLines: z.number().int().min(0).max(1000).optional(),
  })
  .strict();

const serverName = z.string().transform((name, ctx) => {
  try {
    return checkServer(name);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

const port = z.number().int().min(1).max(65535);
const lineDelayMs = z.number().int().min(0).max(MAX_LINE_DELAY_MS);
const maxQueuedLines = z.number().int().min(MAX_LINES_PER_MESSAGE).max(10_000);
/** A glob: `*` any characters, `?` one; matched without regard to case. */
const glob = z.string().regex(/^[^\s\0\r\n]{1,255}$/, { message: "expected a mask such as services.*" });
const services = z
  .object({
    nick: z
      .string()
      .regex(/^[^\s\0\r\n,*?!@]{1,30}$/, { message: "expected a nick" })
      .default(DEFAULT_SERVICES.nick),
    server: glob.optional(),
    host: glob.optional(),
  })
  .strict()
  .refine((s) => [s.server, s.host].some((m) => m !== undefined && /[^*?]/.test(m)), {
    message: "set server or host (a mask that is not only wildcards): who may receive NickServ passwords",
  });
const floodBurst = z.number().int().min(1).max(100);
const charset = z.string().refine(isSupportedCharset, {
  message: "expected a WHATWG encoding label such as windows-1252 or koi8-r",
});

export const ircConfigSchema = z.object({
  servers: z
    .object({
      allow: z.array(serverName).min(1).optional().describe("IRC server names users may reach"),
      fixed: serverName.optional().describe("the one IRC server; then #chan@<domain> works"),
    })
    .strict()
    .refine((s) => (s.allow === undefined) !== (s.fixed === undefined), {
      message: "set either allow (a list of IRC servers) or fixed (one IRC server)",
    })
    .describe("IRC servers users may reach: { allow: [names] } or { fixed: name }"),
  tls: z.boolean().default(true).describe("connect with TLS, certificate verified (RFC 7194)"),
  port: port.optional().describe(`IRC port (default ${TLS_PORT} with TLS, ${PLAIN_PORT} without)`),
  addresses: z
    .record(
      z.string(),
      z
        .object({
          host: z.string().min(1),
          port: port.optional(),
          tls: z.boolean().optional(),
          lineDelayMs: lineDelayMs.optional(),
          floodBurst: floodBurst.optional(),
          maxQueuedLines: maxQueuedLines.optional(),
          services: services.optional(),
          fallbackCharset: charset.optional(),
          archive: archiveOverride.optional(),
        })
        .strict(),
    )
    .default({})
    .describe(
      "per-server address and overrides: server name → { host, port?, tls?, lineDelayMs?, floodBurst?, maxQueuedLines?, services?, fallbackCharset?, archive? }",
    ),
  userName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,10}$/, { message: "expected 1-10 letters, digits, _ . or -" })
    .default("xmpp")
    .describe("IRC user name (ident) of every connection"),
  realName: z
    .string()
    .regex(/^[^\0\r\n]{1,50}$/, { message: "expected 1-50 characters, no line breaks" })
    .default("XMPP gateway user")
    .describe("IRC real name (gecos) of every connection"),
  graceSeconds: z
    .number()
    .min(0)
    .default(DEFAULT_GRACE_SECONDS)
    .describe("seconds before QUIT once a user left every channel of a server"),
  maxConnectionsPerServer: z
    .number()
    .int()
    .min(1)
    .default(DEFAULT_MAX_CONNECTIONS_PER_SERVER)
    .describe("IRC connections the gateway opens to one server (networks limit connections per IP)"),
  connectTimeoutSeconds: z
    .number()
    .min(1)
    .max(300)
    .default(DEFAULT_CONNECT_TIMEOUT_SECONDS)
    .describe("seconds to wait for the IRC server to accept the nick before the join fails"),
  lineDelayMs: lineDelayMs
    .default(DEFAULT_LINE_DELAY_MS)
    .describe(
      "flood control: pause between lines once the burst is spent (0: none); the floor, users may only choose a longer pause",
    ),
  floodBurst: floodBurst
    .default(DEFAULT_FLOOD_BURST)
    .describe("flood control: lines one connection may send at once"),
  maxQueuedLines: maxQueuedLines
    .default(DEFAULT_MAX_QUEUED_LINES)
    .describe("lines one connection holds for flood control; a message beyond gets resource-constraint"),
  passwordKeysEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, {
      message: "expected an environment variable name such as GATEWAY_IRC_KEYS",
    })
    .optional()
    .describe(
      "environment variable with the keys (32 bytes, base64 or hex, comma-separated, the first seals) that encrypt users' SASL/NickServ passwords in Redis; without it users cannot store passwords",
    ),
  services: services
    .default(DEFAULT_SERVICES)
    .describe(
      "who receives NickServ IDENTIFY: { nick, server?, host? } masks checked by WHOIS before the password is sent",
    ),
  fallbackCharset: charset
    .default(DEFAULT_FALLBACK_CHARSET)
    .describe("charset of IRC lines that are not valid UTF-8"),
  reconnectMaxSeconds: z
    .number()
    .min(1)
    .max(3600)
    .default(DEFAULT_RECONNECT_MAX_SECONDS)
    .describe("longest pause between two redials of a lost IRC server (backoff with jitter up to it)"),
  reconnectMaxAttempts: z
    .number()
    .int()
    .min(1)
    .default(DEFAULT_RECONNECT_MAX_ATTEMPTS)
    .describe("failed redials before the user is told they left the server's rooms"),
  channelListCacheSeconds: z
    .number()
    .int()
    .min(1)
    .max(86_400)
    .default(DEFAULT_CHANNEL_LIST_CACHE_SECONDS)
    .describe(
      "seconds a server's channel list (disco#items on the server JID) is kept before LIST is sent again",
    ),
  channelListTimeoutSeconds: z
    .number()
    .min(1)
    .max(600)
    .default(DEFAULT_CHANNEL_LIST_TIMEOUT_SECONDS)
    .describe(
      "seconds of silence from the IRC server during a LIST before the channel list fails as timed out",
    ),
  reconnectNoticeSeconds: z
    .number()
    .min(0)
    .default(DEFAULT_OUTAGE_NOTICE_SECONDS)
    .describe("seconds of IRC outage before the user's rooms get a message saying so"),
  archive: z
    .object({
      enabled: z.boolean().default(true).describe("archive channel lines (XEP-0313 MAM, join history)"),
      maxDays: z
        .number()
        .min(0)
        .max(3650)
        .default(DEFAULT_ARCHIVE_MAX_DAYS)
        .describe("days a channel line stays in the archive (0: no age limit; fractions allowed)"),
      maxLines: z
        .number()
        .int()
        .min(1)
        .max(10_000_000)
        .default(DEFAULT_ARCHIVE_MAX_LINES)
        .describe("lines kept per channel (trimmed in blocks of Redis's stream-node-max-entries)"),
      historyLines: z
        .number()
        .int()
        .min(0)
        .max(1000)
        .default(DEFAULT_HISTORY_LINES)
        .describe("lines sent on a join that does not say how much history it wants"),
    })
    .strict()
    .default({
      enabled: true,
      maxDays: DEFAULT_ARCHIVE_MAX_DAYS,
      maxLines: DEFAULT_ARCHIVE_MAX_LINES,
      historyLines: DEFAULT_HISTORY_LINES,
    })
    .describe("channel archive: { enabled, maxDays, maxLines, historyLines }; per server under addresses"),
});

export type IrcConfig = z.output<typeof ircConfigSchema>;

export interface ArchivePolicy {
  enabled: boolean;
  maxDays: number;
  maxLines: number;
  historyLines: number;
}

/** The archive settings of a server: its overrides, else the adapter's. */
export function archivePolicy(
  config: Pick<IrcConfig, "addresses" | "archive">,
  server: string,
): ArchivePolicy {
  const own = config.addresses[server]?.archive;
  return {
    enabled: own?.enabled ?? config.archive.enabled,
    maxDays: own?.maxDays ?? config.archive.maxDays,
    maxLines: own?.maxLines ?? config.archive.maxLines,
    historyLines: own?.historyLines ?? config.archive.historyLines,
  };
}

/** Where to connect for an IRC server name: the alias if configured, else the name itself. */
export function addressOf(
  config: Pick<IrcConfig, "addresses" | "tls" | "port">,
  server: string,
): { host: string; port: number; tls: boolean } {
  const alias = config.addresses[server];
  const tls = alias?.tls ?? config.tls;
  return {
    host: alias?.host ?? server,
    tls,
    port: alias?.port ?? config.port ?? (tls ? TLS_PORT : PLAIN_PORT),
  };
}

/** Where a connection dials and as whom: the server's address, the user's nick, port, SASL and charset. */
export function linkOptions(
  config: Pick<IrcConfig, "addresses" | "tls" | "port" | "userName" | "realName" | "connectTimeoutSeconds">,
  server: string,
  settings: Pick<SessionSettings, "nick" | "port" | "sasl" | "fallbackCharset">,
  otherNickOk: boolean,
): LinkOptions {
  const address = addressOf(config, server);
  return {
    server,
    host: address.host,
    port: settings.port ?? address.port,
    tls: address.tls,
    nick: settings.nick,
    // SASL PLAIN authenticates as the account: the user name is the account name then.
    userName: settings.sasl?.account ?? config.userName,
    realName: config.realName,
    sasl: settings.sasl,
    fallbackCharset: settings.fallbackCharset,
    connectTimeoutMs: config.connectTimeoutSeconds * 1000,
    otherNickOk,
  };
}

/** Flood control and services of a server: its overrides, else the adapter's settings. */
export function serverPolicy(
  config: Pick<IrcConfig, "addresses" | "lineDelayMs" | "floodBurst" | "maxQueuedLines" | "services">,
  server: string,
): { lineDelayMs: number; floodBurst: number; maxQueuedLines: number; services: IrcConfig["services"] } {
  const alias = config.addresses[server];
  return {
    lineDelayMs: alias?.lineDelayMs ?? config.lineDelayMs,
    floodBurst: alias?.floodBurst ?? config.floodBurst,
    maxQueuedLines: alias?.maxQueuedLines ?? config.maxQueuedLines,
    services: alias?.services ?? config.services,
  };
}

/** Whether the config lets users reach this (lowercased) IRC server. */
export function isServerAllowed(config: Pick<IrcConfig, "servers">, server: string): boolean {
  return config.servers.fixed === server || (config.servers.allow ?? []).includes(server);
}
