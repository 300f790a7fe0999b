/**
 * Sending through Twilio's Messages API (or a Twilio-compatible one) with the official SDK: keep-alive on,
 * a configurable base URL, and errors turned into what the XMPP user should see.
 *
 * Retries: only when Twilio certainly did not create the message (429, 503 and 500 answers, or a connection
 * that was refused). A timeout may hide a created message, and the Messages API has no idempotency key, so
 * a timed-out send is reported (remote-server-timeout) rather than repeated: never two SMS for one message.
 * What the user is told says which: SendRefused when Twilio certainly created nothing, MaybeSent otherwise.
 */
import http from "node:http";
import type twilio from "twilio";
import { MaybeSent, SendRefused } from "../../src/adapter.js";
import type { GatewayError } from "../../src/xmpp/errors.js";
import { describeTwilioError } from "./twilio-errors.js";

/** Attempts for a send Twilio answered with 429/5xx or refused to connect for. */
export const SEND_ATTEMPTS = 3;
/** First pause between attempts; doubles each time. */
export const RETRY_BASE_MS = 500;

type RequestOptions = Parameters<twilio.RequestClient["request"]>[0];

/**
 * The SDK's client. The SDK (several MiB of heap, with axios) is loaded at the first send, not at start: an
 * idle gateway does not need it.
 */
async function createTwilioClient(opts: TwilioOptions): Promise<twilio.Twilio> {
  const { default: sdk } = await import("twilio");
  /** Sends the SDK's requests (built for https://api.twilio.com) to a Twilio-compatible base URL. */
  class BaseUrlRequestClient extends sdk.RequestClient {
    constructor(
      private readonly base: string,
      timeoutMs: number,
    ) {
      super({ keepAlive: true, timeout: timeoutMs });
      // The SDK keeps https sockets alive; a plain-http compatible API (a local test server) needs its own agent.
      if (base.startsWith("http:")) this.axios.defaults.httpAgent = new http.Agent({ keepAlive: true });
    }

    override request<TData>(opts: RequestOptions & { data?: TData }) {
      const uri = new URL(opts.uri);
      return super.request<TData>({ ...opts, uri: this.base + uri.pathname + uri.search });
    }
  }
  const httpClient = opts.apiBaseUrl
    ? new BaseUrlRequestClient(opts.apiBaseUrl, opts.timeoutMs)
    : new sdk.RequestClient({ keepAlive: true, timeout: opts.timeoutMs });
  return sdk(opts.accountSid, opts.authToken, { httpClient });
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
  private client: Promise<twilio.Twilio> | undefined;

  constructor(private readonly opts: TwilioOptions) {}

  async send(request: SendRequest, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))) {
    for (let attempt = 1; ; attempt++) {
      try {
        this.client ??= createTwilioClient(this.opts);
        const message = await (
          await this.client
        ).messages.create({
          from: request.from,
          to: request.to,
          ...(request.body ? { body: request.body } : {}),
          ...(request.mediaUrls.length ? { mediaUrl: request.mediaUrls } : {}),
          ...(request.statusCallback ? { statusCallback: request.statusCallback } : {}),
        });
        return { sid: message.sid, status: message.status };
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
  return new MaybeSent(
    "remote-server-timeout",
    "The SMS provider did not answer in time, so the gateway cannot tell whether the SMS went out. " +
      "It was not sent again, to avoid a duplicate.",
    { cause: err },
  );
}
