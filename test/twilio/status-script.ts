/**
 * The course of an outbound message after Twilio accepted it: the states a test scripts for a destination,
 * the resource updated to each, and the status callbacks posted for them (possibly doubled or reordered, as
 * the guide warns they can arrive).
 * https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks
 */
import type { MessageStatus, StoredMessage } from "./messages.js";
import { deliver, signedRequest, statusParams, type WebhookAnswer, type WebhookRequest } from "./webhooks.js";

export type ScriptStep = Exclude<MessageStatus, "accepted">;

export interface ScriptOptions {
  /** ErrorCode sent with undelivered/failed (default: DEFAULT_ERROR_CODES). */
  errorCode?: number;
  /** Send every callback twice (the same request both times). */
  duplicate?: boolean;
  /** Send the callbacks last state first. */
  reverse?: boolean;
}

export interface Script {
  steps: readonly ScriptStep[];
  opts: ScriptOptions;
}

/** Without a script, the usual course of a message sent from a number: sent, then delivered. */
export const DEFAULT_SCRIPT: Script = { steps: ["sent", "delivered"], opts: {} };
const STEPS: readonly string[] = ["queued", "sending", "sent", "delivered", "undelivered", "failed"];
/** 30003 "Unreachable destination handset", 30008 "Unknown error" (https://www.twilio.com/docs/api/errors). */
export const DEFAULT_ERROR_CODES: Partial<Record<ScriptStep, number>> = { undelivered: 30003, failed: 30008 };

/** One status callback attempt and how the receiver answered (answer null when unreachable). */
export interface CallbackRecord {
  messageSid: string;
  status: ScriptStep;
  request: WebhookRequest;
  answer: WebhookAnswer | null;
  error: string | null;
}

export function checkScript(steps: readonly string[], opts: ScriptOptions = {}): Script {
  const unknown = steps.find((s) => !STEPS.includes(s));
  if (unknown !== undefined) throw new RangeError(`unknown message status in a script: ${unknown}`);
  return { steps: steps as readonly ScriptStep[], opts: { ...opts } };
}

/** The order callbacks go out in: script order, or reversed, each once or twice in a row. */
export function callbackOrder<T>(events: readonly T[], opts: ScriptOptions): T[] {
  const ordered = opts.reverse ? [...events].reverse() : [...events];
  return opts.duplicate ? ordered.flatMap((e) => [e, e]) : ordered;
}

export interface StatusEvent {
  status: ScriptStep;
  params: Record<string, string>;
}

/**
 * Moves the message through every step of the script (so a fetch shows its final state) and returns the
 * callback parameters of each step, in script order. A Messaging Service picks `sender` when it sends.
 */
export function advance(message: StoredMessage, script: Script, sender: string): StatusEvent[] {
  const from = (message.from ??= sender);
  return script.steps.map((status) => {
    const errorCode = script.opts.errorCode ?? DEFAULT_ERROR_CODES[status] ?? null;
    message.status = status;
    message.errorCode = status === "failed" || status === "undelivered" ? errorCode : null;
    message.dateUpdated = new Date();
    if (status === "sent") message.dateSent = message.dateUpdated;
    return { status, params: statusParams({ ...message, messageSid: message.sid, from, errorCode }) };
  });
}

/** Posts signed callbacks one after the other; each attempt is logged, a failure never throws. */
export async function postCallbacks(
  events: readonly StatusEvent[],
  to: { messageSid: string; url: string; authToken: string; opts: ScriptOptions },
  log: (record: CallbackRecord) => void,
  signal: AbortSignal,
): Promise<void> {
  const signed = events.map(({ status, params }) => ({
    status,
    request: signedRequest(to.authToken, to.url, params),
  }));
  for (const { status, request } of callbackOrder(signed, to.opts)) {
    const record: CallbackRecord = { messageSid: to.messageSid, status, request, answer: null, error: null };
    log(record);
    try {
      record.answer = await deliver(request, signal);
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
  }
}
