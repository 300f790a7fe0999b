/** What a test sees of the Twilio fake (test/twilio/server.ts): its options, records and methods. */
import type { CallbackRecord, ScriptOptions, ScriptStep } from "./status-script.js";
import type { WebhookAnswer, WebhookRequest } from "./webhooks.js";

export interface TwilioFakeOptions {
  accountSid: string;
  authToken: string;
  /** Numbers the account owns (E.164): the only accepted `From` values and inbound `To` values. */
  numbers: string[];
  host?: "127.0.0.1";
  /** 0 (the default) picks a free port; the sandbox may ask for a fixed one. */
  port?: number;
}

/** One create the fake accepted, as requested. */
export interface SentMessage {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  mediaUrls: string[];
  statusCallback: string | null;
  /** The whole form as posted; a repeated name (MediaUrl) gives an array. */
  form: Record<string, string | string[]>;
}

export interface InboundOptions {
  from: string;
  to: string;
  body?: string;
  media?: { url: string; contentType: string }[];
  webhookUrl: string;
  messageSid?: string;
  /** Sign with the wrong key, as a forger would. */
  forge?: boolean;
}

export interface InboundResult extends WebhookAnswer {
  /** The request as sent; pass it to `replay` to send the very same bytes again. */
  request: WebhookRequest;
}

export interface MediaOptions {
  hang?: boolean;
  chunked?: boolean;
}

export interface TwilioFake {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  /** API requests received (media downloads not counted), faulted or not. */
  readonly requests: number;
  script(to: string, steps: ScriptStep[], opts?: ScriptOptions): void;
  fail(next: { status: 429 | 500 | 503; code?: number; times: number }): void;
  /**
   * The next `times` API requests are handled but never answered, as when the answer is lost: a create
   * still creates the message (it is in `sent()` and its callbacks follow), the client just never learns.
   */
  hang(times: number): void;
  /**
   * The next `times` API requests are handled (a create creates the message), then their connection is reset
   * before any answer: the client sees the connection break, as when a proxy or the provider drops it.
   */
  cut(times: number): void;
  /**
   * The next API request is handled at once (a create creates the message) but answered only after
   * `release()`; `reached` resolves when it arrives. A test does something in between (e.g. stops Redis).
   */
  hold(): { reached: Promise<void>; release: () => void };
  reset(): void;
  sendInbound(opts: InboundOptions): Promise<InboundResult>;
  replay(request: WebhookRequest): Promise<WebhookAnswer>;
  /**
   * A media file behind Basic auth; returns its URL. `hang`: the request is taken and never answered (a
   * carrier that does not answer); `chunked`: sent without Content-Length (its size known only at the end).
   */
  media(contentType: string, bytes: Uint8Array | string, opts?: MediaOptions): string;
  sent(): SentMessage[];
  callbacks(): CallbackRecord[];
  onSent(listener: (message: SentMessage) => void): void;
  /** Resolves once every status callback started so far has been answered (or given up on). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}
