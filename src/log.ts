import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Paths never written to the log. Message bodies are only logged by callers at debug level
 * (`log.debug({ body })`), so they stay out of info-level production logs.
 */
const SECRET_KEYS = ["secret", "password", "pass", "token", "authToken", "apiKey", "authorization"];
/** Depth of nested objects searched for secret keys (pino redaction paths are explicit). */
const REDACT_DEPTH = 4;
const REDACT = SECRET_KEYS.flatMap((key) =>
  Array.from({ length: REDACT_DEPTH }, (_, depth) => [...Array<string>(depth).fill("*"), key].join(".")),
);

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: "xmpp-gateway" },
    redact: { paths: REDACT, censor: "[redacted]" },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
