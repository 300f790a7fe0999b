/**
 * The last warnings and errors the gateway logged, for the admin page: a bounded in-memory ring per process.
 * Only a few known fields are kept (never a message body, a form value or a secret): the log message, the
 * adapter and domain, and short reason fields.
 */

/** Entries kept; the oldest is dropped first. */
export const RECENT_ERRORS_KEPT = 100;
/** Longest text kept from one field. */
export const RECENT_ERROR_FIELD_CHARS = 300;
/** The only log fields copied into an entry. */
const KEPT_FIELDS = ["adapter", "domain", "condition", "reason", "path", "stanzaId", "sid", "err"] as const;

export interface RecentError {
  at: string;
  level: "warn" | "error" | "fatal";
  message: string;
  fields: Record<string, string>;
}

function clip(value: string): string {
  return value.length > RECENT_ERROR_FIELD_CHARS ? `${value.slice(0, RECENT_ERROR_FIELD_CHARS)}…` : value;
}

function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Error) return value.message;
  return undefined;
}

export class RecentErrors {
  private readonly entries: RecentError[] = [];

  constructor(
    private readonly kept = RECENT_ERRORS_KEPT,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Records one log entry of level warn (40) or above; lower levels are ignored. */
  record(level: number, bindings: Record<string, unknown>, message: string): void {
    if (level < 40) return;
    const fields: Record<string, string> = {};
    for (const name of KEPT_FIELDS) {
      const value = text(bindings[name]);
      if (value !== undefined) fields[name] = clip(value);
    }
    this.entries.push({
      at: this.now().toISOString(),
      level: level >= 60 ? "fatal" : level >= 50 ? "error" : "warn",
      message: clip(message),
      fields,
    });
    if (this.entries.length > this.kept) this.entries.splice(0, this.entries.length - this.kept);
  }

  /** Newest first. */
  list(): RecentError[] {
    return [...this.entries].reverse();
  }
}
