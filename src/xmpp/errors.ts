/**
 * Typed stanza errors. Anything the gateway refuses is thrown as a GatewayError; the error boundary in
 * src/core/boundary.ts turns it into an RFC 6120 §8.3 stanza error with a human-readable <text>.
 */

/** RFC 6120 §8.3.3 conditions the gateway uses, with the error type each defaults to. */
const DEFAULT_TYPES = {
  "bad-request": "modify",
  conflict: "cancel",
  "feature-not-implemented": "cancel",
  forbidden: "auth",
  "internal-server-error": "cancel",
  "item-not-found": "cancel",
  "jid-malformed": "modify",
  "not-acceptable": "modify",
  "not-allowed": "cancel",
  "not-authorized": "auth",
  "policy-violation": "modify",
  "recipient-unavailable": "wait",
  "registration-required": "auth",
  "remote-server-not-found": "cancel",
  "remote-server-timeout": "wait",
  "resource-constraint": "wait",
  "service-unavailable": "cancel",
  "undefined-condition": "cancel",
  "unexpected-request": "wait",
} as const;

export type ErrorCondition = keyof typeof DEFAULT_TYPES;
export type ErrorType = "auth" | "cancel" | "continue" | "modify" | "wait";

export class GatewayError extends Error {
  readonly condition: ErrorCondition;
  readonly type: ErrorType;

  constructor(condition: ErrorCondition, text: string, options: { type?: ErrorType; cause?: unknown } = {}) {
    super(text, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.condition = condition;
    this.type = options.type ?? DEFAULT_TYPES[condition];
  }
}

export function isErrorCondition(value: string): value is ErrorCondition {
  return Object.hasOwn(DEFAULT_TYPES, value);
}
