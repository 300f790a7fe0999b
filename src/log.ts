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

/** Receives every entry of level warn (40) or above, with the child logger's bindings merged in. */
export type WarningSink = (level: number, fields: Record<string, unknown>, message: string) => void;

export function createLogger(
  options: { level?: string; destination?: pino.DestinationStream; warnings?: WarningSink } = {},
): Logger {
  const sink = options.warnings;
  const opts: pino.LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: "xmpp-gateway" },
    redact: { paths: REDACT, censor: "[redacted]" },
    ...(sink && {
      hooks: {
        logMethod(args, method, level) {
          if (level >= 40) {
            const [first, second] = args as unknown[];
            const fields = typeof first === "object" && first !== null ? first : {};
            const message = typeof first === "string" ? first : typeof second === "string" ? second : "";
            try {
              sink(level, { ...this.bindings(), ...fields }, message);
            } catch {
              // The sink must never break logging.
            }
          }
          method.apply(this, args);
        },
      },
    }),
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}
