/**
 * Sending through Twilio's Messages API (or a Twilio-compatible one): one form-encoded POST to
 * `/2010-04-01/Accounts/{AccountSid}/Messages.json` with Basic auth, on a keep-alive connection pool, and errors
 * turned into what the XMPP user should see.
 *
 * The request is made here rather than through the `twilio` SDK: the SDK's request layer (axios, its
 * interceptors and form encoding) cost more CPU per SMS than the rest of the send (bench/RESULTS.md,
 * "Cost per message"), and the documented API is one request. The SDK is still what checks webhook
 * signatures (webhooks.ts). Failed answers are read the way the SDK reads them: `status`, and the JSON body's
 * `code` and `message`.
 *
 * Retries: only when Twilio certainly did not create the message (429, 503 and 500 answers, or a connection
 * that was refused). A timeout may hide a created message, and the Messages API has no idempotency key, so
 * a timed-out send is reported (remote-server-timeout) rather than repeated: never two SMS for one message.
 * What the user is told says which: SendRefused when Twilio certainly created nothing, MaybeSent otherwise.
 */
import http from "node:http";
import https from "node:https";
import { MaybeSent, SendRefused } from "../../src/adapter.js";
import type { GatewayError } from "../../src/xmpp/errors.js";
import { describeTwilioError } from "./twilio-errors.js";

/** Attempts for a send Twilio answered with 429/5xx or refused to connect for. */
export const SEND_ATTEMPTS = 3;
/** First pause between attempts; doubles each time. */
export const RETRY_BASE_MS = 500;
/** Twilio's REST API. */
export const TWILIO_API = "https://api.twilio.com";
/** Largest answer read from the API; a Message resource is about 1 KiB. */
const MAX_ANSWER_BYTES = 256 * 1024;
/** Connections kept open to the API at most (per instance); more sends wait for one. */
const MAX_SOCKETS = 64;
/**
 * A connection left idle this long is closed by the gateway (sooner when the server announces a shorter
 * keep-alive, Node's Agent takes a second off). Without it an idle connection stays open until the server or a
 * proxy drops it, and a send that goes out on it just then breaks, or hangs if it was dropped silently: the
 * user is told the SMS may not have gone out, when it most likely did not. undici's default is the same.
 */
export const IDLE_CONNECTION_MS = 4000;

/** A failed answer of the API, shaped like the SDK's RestException (status, code, message). */
export class TwilioApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The Messages resource of one account, reached over keep-alive connections. */
class MessagesApi {
  private readonly url: URL;
  private readonly authorization: string;
  private readonly transport: typeof http | typeof https;
  private readonly agent: http.Agent;

  constructor(private readonly opts: TwilioOptions) {
    this.url = new URL(
      `/2010-04-01/Accounts/${encodeURIComponent(opts.accountSid)}/Messages.json`,
      opts.apiBaseUrl ?? TWILIO_API,
    );
    this.authorization = `Basic ${Buffer.from(`${opts.accountSid}:${opts.authToken}`).toString("base64")}`;
    const secure = this.url.protocol === "https:";
    this.transport = secure ? https : http;
    this.agent = new (secure ? https.Agent : http.Agent)({
      keepAlive: true,
      maxSockets: MAX_SOCKETS,
      timeout: IDLE_CONNECTION_MS,
    });
  }

  /** POSTs `form`; resolves with the created message, rejects with TwilioApiError or a network error. */
  create(form: URLSearchParams): Promise<{ sid: string; status: string }> {
    const body = form.toString();
    return new Promise((resolve, reject) => {
      const request = this.transport.request(this.url, {
        method: "POST",
        agent: this.agent,
        headers: {
          authorization: this.authorization,
          accept: "application/json",
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
        },
      });
      // One deadline for the whole exchange; the error says the request may have been taken.
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`no answer within ${this.opts.timeoutMs} ms`), {
          code: "ETIMEDOUT",
        });
        request.destroy(err);
      }, this.opts.timeoutMs);
      request.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      request.once("response", (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) request.destroy(new Error("answer too large"));
          else chunks.push(chunk);
        });
        response.once("end", () => {
          clearTimeout(timer);
          const status = response.statusCode ?? 0;
          const answer = parseJson(Buffer.concat(chunks).toString("utf8"));
          if (status >= 200 && status < 300 && typeof answer?.sid === "string")
            resolve({
              sid: answer.sid,
              status: typeof answer.status === "string" ? answer.status : "queued",
            });
          else
            reject(
              new TwilioApiError(
                status,
                typeof answer?.code === "number" ? answer.code : undefined,
                typeof answer?.message === "string"
                  ? answer.message
                  : `[HTTP ${status}] Failed to execute request`,
              ),
            );
        });
      });
      request.end(body);
    });
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface SendRequest {
  from: string;
  to: string;
  body: string;
  mediaUrls: string[];
  statusCallback: string | undefined;
}

export interface TwilioOptions {
  accountSid: string;
  authToken: string;
  apiBaseUrl: string | undefined;
  timeoutMs: number;
}

export class TwilioSender {
  private readonly api: MessagesApi;

  constructor(opts: TwilioOptions) {
    this.api = new MessagesApi(opts);
  }

  async send(request: SendRequest, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))) {
    const form = new URLSearchParams({ To: request.to, From: request.from });
    if (request.body) form.set("Body", request.body);
    for (const url of request.mediaUrls) form.append("MediaUrl", url);
    if (request.statusCallback) form.set("StatusCallback", request.statusCallback);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.api.create(form);
      } catch (err) {
        const retry = retryable(err);
        if (retry && attempt < SEND_ATTEMPTS) {
          await sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
          continue;
        }
        throw toGatewayError(err, retry);
      }
    }
  }
}

function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" ? status : undefined;
}

function retryable(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== undefined) return status === 429 || status === 500 || status === 503;
  const code = (err as { code?: unknown }).code;
  return code === "ECONNREFUSED";
}

function toGatewayError(err: unknown, wasRetried: boolean): GatewayError {
  const status = statusOf(err);
  if (status !== undefined && !wasRetried && status < 500 && status !== 429) {
    const code = (err as { code?: unknown }).code;
    const { condition, text } = describeTwilioError(
      typeof code === "number" ? code : undefined,
      (err as Error).message,
    );
    // Twilio answered no: nothing was created.
    return new SendRefused(condition, text, { cause: err });
  }
  if (wasRetried)
    return new SendRefused(
      "remote-server-timeout",
      `The SMS provider is not taking messages right now (tried ${SEND_ATTEMPTS} times); nothing was sent. ` +
        "Try again later.",
      { cause: err },
    );
  // No answer: either none came in time, or the connection broke before one came (a reset, a proxy or the
  // provider closing it). Either way the request may have been taken.
  const what =
    (err as { code?: unknown }).code === "ETIMEDOUT"
      ? "The SMS provider did not answer in time"
      : "The connection to the SMS provider broke before it answered";
  return new MaybeSent(
    "remote-server-timeout",
    `${what}, so the gateway cannot tell whether the SMS went out. It was not sent again, to avoid a duplicate.`,
    { cause: err },
  );
}
