import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Paths never written to the log. Message bodies are only logged by callers at debug level
 * (`log.debug({ body })`), so they stay out of info-level production logs.
 */
const REDACT = [
  "secret",
  "password",
  "token",
  "authToken",
  "*.secret",
  "*.password",
  "*.token",
  "*.authToken",
  "*.*.secret",
  "*.*.password",
];

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: "xmpp-gateway" },
    redact: { paths: REDACT, censor: "[redacted]" },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
