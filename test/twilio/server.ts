/**
 * A Twilio-compatible HTTP server on loopback for tests and the quickstart: the Messages API behind HTTP
 * Basic auth, signed status callbacks that follow a per-destination script, signed incoming-message
 * webhooks, authenticated media URLs, and faults a test can inject (error answers, requests left hanging).
 * https://www.twilio.com/docs/messaging/api/message-resource
 */
import { setMaxListeners } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  API_VERSION,
  FAULT_ERRORS,
  messageJson,
  newSid,
  readCreate,
  twilioError,
  validateCreate,
  type StoredMessage,
} from "./messages.js";
import { formParams } from "./signature.js";
import {
  advance,
  checkScript,
  DEFAULT_SCRIPT,
  postCallbacks,
  type CallbackRecord,
  type Script,
  type ScriptOptions,
  type ScriptStep,
} from "./status-script.js";
import type {
  InboundOptions,
  InboundResult,
  MediaOptions,
  SentMessage,
  TwilioFake,
  TwilioFakeOptions,
} from "./types.js";
import {
  deliver,
  inboundParams,
  signedRequest,
  type WebhookAnswer,
  type WebhookRequest,
} from "./webhooks.js";

export type { CallbackRecord, ScriptOptions, ScriptStep } from "./status-script.js";
export type { InboundOptions, InboundResult, SentMessage, TwilioFake, TwilioFakeOptions } from "./types.js";

/** Largest API request body the fake reads; a create with 10 media URLs and 1600 characters is ~10 KiB. */
export const MAX_REQUEST_BYTES = 1024 * 1024;
/** Messages (and media files) kept for fetches, oldest dropped first, so a long sandbox session stays small. */
export const MAX_STORED = 10_000;

type Fault =
  | { kind: "fail"; status: number; code: number; message: string }
  | { kind: "hang" }
  | { kind: "reset" }
  | { kind: "hold"; reached: () => void; released: Promise<void> };
const base = `/${API_VERSION}/Accounts/([^/]+)/Messages`;
const MESSAGES = new RegExp(`^${base}\\.json$`);
const MESSAGE = new RegExp(`^${base}/([^/]+)\\.json$`);
const MEDIA = new RegExp(`^${base}/([^/]+)/Media/([^/.]+)$`);

export async function startTwilioFake(opts: TwilioFakeOptions): Promise<TwilioFake> {
  const fake = new Fake(opts);
  await fake.listen(opts.host ?? "127.0.0.1", opts.port ?? 0);
  return fake;
}

class Fake implements TwilioFake {
  url = "";
  requests = 0;
  private readonly server = createServer((req, res) => this.receive(req, res));
  private readonly messages = new Map<string, StoredMessage>();
  private readonly mediaFiles = new Map<string, { contentType: string; bytes: Buffer } & MediaOptions>();
  private readonly scripts = new Map<string, Script>();
  private faults: Fault[] = [];
  private sentLog: SentMessage[] = [];
  private callbackLog: CallbackRecord[] = [];
  private readonly listeners: ((m: SentMessage) => void)[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly opts: TwilioFakeOptions) {
    // Every webhook in flight listens for the stop: hundreds at once under load, not a leak.
    setMaxListeners(0, this.stopping.signal);
  }

  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    this.url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  script(to: string, steps: ScriptStep[], opts: ScriptOptions = {}): void {
    this.scripts.set(to, checkScript(steps, opts));
  }

  fail(next: { status: 429 | 500 | 503; code?: number; times: number }): void {
    const known = FAULT_ERRORS[next.status];
    if (known === undefined) throw new RangeError(`cannot fake HTTP ${next.status}`);
    for (let i = 0; i < next.times; i++) {
      this.faults.push({
        kind: "fail",
        status: next.status,
        code: next.code ?? known.code,
        message: known.message,
      });
    }
  }

  hang(times: number): void {
    for (let i = 0; i < times; i++) this.faults.push({ kind: "hang" });
  }

  /** The next `times` requests are handled, then their connection is cut before any answer (a reset). */
  cut(times: number): void {
    for (let i = 0; i < times; i++) this.faults.push({ kind: "reset" });
  }

  hold(): { reached: Promise<void>; release: () => void } {
    let reached = () => undefined as void;
    let release = () => undefined as void;
    const arrived = new Promise<void>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.faults.push({ kind: "hold", reached, released });
    return { reached: arrived, release };
  }

  reset(): void {
    this.faults = [];
    this.scripts.clear();
    this.sentLog = [];
    this.callbackLog = [];
    this.requests = 0;
  }

  sent(): SentMessage[] {
    return [...this.sentLog];
  }

  callbacks(): CallbackRecord[] {
    return [...this.callbackLog];
  }

  onSent(listener: (message: SentMessage) => void): void {
    this.listeners.push(listener);
  }

  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all(this.pending);
  }

  media(contentType: string, bytes: Uint8Array | string, opts: MediaOptions = {}): string {
    const path = `/${API_VERSION}/Accounts/${this.opts.accountSid}/Messages/${newSid("MM")}/Media/${newSid("ME")}`;
    remember(this.mediaFiles, path, { contentType, bytes: Buffer.from(bytes), ...opts });
    return this.url + path;
  }

  async sendInbound(o: InboundOptions): Promise<InboundResult> {
    if (!this.opts.numbers.includes(o.to)) {
      throw new RangeError(`${o.to} is not a number of this account; Twilio would not deliver to it`);
    }
    const media = o.media ?? [];
    const params = inboundParams({
      accountSid: this.opts.accountSid,
      messageSid: o.messageSid ?? newSid(media.length > 0 ? "MM" : "SM"),
      from: o.from,
      to: o.to,
      body: o.body ?? "",
      media,
    });
    const request = signedRequest(this.opts.authToken, o.webhookUrl, params, o.forge ?? false);
    return { ...(await deliver(request, this.stopping.signal)), request };
  }

  replay(request: WebhookRequest): Promise<WebhookAnswer> {
    return deliver(request, this.stopping.signal);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      // The fake's own guard, not Twilio behaviour: a plain 413 without a Twilio error code.
      if (size > MAX_REQUEST_BYTES) return void res.writeHead(413).end();
      this.route(req, res, Buffer.concat(chunks).toString("utf8"));
    });
  }

  private route(req: IncomingMessage, res: ServerResponse, body: string): void {
    const path = new URL(req.url ?? "/", this.url).pathname;
    const mediaFile = MEDIA.test(path) ? this.mediaFiles.get(path) : undefined;
    if (mediaFile) {
      // Media URLs behind HTTP Basic auth, as with Twilio's "enforce HTTP Auth on media URLs" setting.
      if (!this.authorised(req, this.opts.accountSid)) return json(res, 401, authError());
      if (mediaFile.hang) return; // taken, never answered; stop() closes the connection
      if (mediaFile.chunked) {
        res.writeHead(200, { "content-type": mediaFile.contentType, "transfer-encoding": "chunked" });
        if (req.method !== "HEAD") res.write(mediaFile.bytes);
        return void res.end();
      }
      res.writeHead(200, { "content-type": mediaFile.contentType, "content-length": mediaFile.bytes.length });
      return void res.end(req.method === "HEAD" ? undefined : mediaFile.bytes);
    }
    this.requests++;
    const fault = this.faults.shift();
    // A hung request is handled as usual (a create creates the message: it reached Twilio), but its answer
    // is never sent, as when the response is lost on the way back; stop() closes the connection.
    // A reset one is handled too, then its connection is cut: the client sees the connection break.
    const hang = fault?.kind === "hang";
    if (fault?.kind === "fail")
      return json(res, fault.status, twilioError(fault.status, fault.code, fault.message));
    const answer: typeof json =
      fault?.kind === "hold"
        ? (...args) => void fault.released.then(() => json(...args))
        : hang
          ? () => undefined
          : fault?.kind === "reset"
            ? () => void res.socket?.resetAndDestroy()
            : json;
    if (fault?.kind === "hold") fault.reached();

    const list = MESSAGES.exec(path);
    const one = MESSAGE.exec(path);
    const account = list?.[1] ?? one?.[1];
    if (account === undefined) return answer(res, 404, notFound(path));
    // Twilio answers 20003 for bad credentials and for credentials of another account alike.
    if (!this.authorised(req, account)) return answer(res, 401, authError());
    if (list && req.method === "POST") return this.create(res, new URLSearchParams(body), answer);
    if (one?.[2] !== undefined && req.method === "GET") {
      const message = this.messages.get(one[2]);
      return message ? answer(res, 200, messageJson(message)) : answer(res, 404, notFound(path));
    }
    answer(res, 405, twilioError(405, 20004, "Method not allowed"));
  }

  private authorised(req: IncomingMessage, account: string): boolean {
    const [scheme, encoded] = (req.headers.authorization ?? "").split(" ");
    if (scheme?.toLowerCase() !== "basic" || encoded === undefined) return false;
    const decoded = Buffer.from(encoded, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    return colon > 0 && user === this.opts.accountSid && password === this.opts.authToken && account === user;
  }

  private create(res: ServerResponse, form: URLSearchParams, answer: typeof json): void {
    const req = readCreate(form);
    const refusal = validateCreate(req, this.opts.numbers);
    if (refusal) return answer(res, refusal.status, refusal);
    const now = new Date();
    const viaService = req.from === undefined;
    const message: StoredMessage = {
      sid: newSid(req.mediaUrls.length > 0 ? "MM" : "SM"),
      accountSid: this.opts.accountSid,
      to: req.to ?? "",
      from: req.from ?? null,
      messagingServiceSid: viaService ? (req.messagingServiceSid ?? null) : null,
      body: req.body ?? "",
      mediaUrls: req.mediaUrls,
      // Twilio: "queued" from a number, "accepted" through a Messaging Service.
      status: viaService ? "accepted" : "queued",
      errorCode: null,
      dateCreated: now,
      dateUpdated: now,
      dateSent: null,
    };
    remember(this.messages, message.sid, message);
    const sent: SentMessage = {
      sid: message.sid,
      to: message.to,
      from: message.from,
      messagingServiceSid: message.messagingServiceSid,
      body: message.body,
      mediaUrls: message.mediaUrls,
      statusCallback: req.statusCallback ?? null,
      form: formParams(form),
    };
    this.sentLog.push(sent);
    if (this.sentLog.length > MAX_STORED) this.sentLog.shift();
    answer(res, 201, messageJson(message));
    for (const listener of this.listeners) listener(sent);
    const run = this.progress(message, req.statusCallback).finally(() => this.pending.delete(run));
    this.pending.add(run);
  }

  /** Move the message along its script; post each state to the status callback, if one was given. */
  private async progress(message: StoredMessage, callbackUrl: string | undefined): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve)); // after the create answer is on its way
    const script = this.scripts.get(message.to) ?? DEFAULT_SCRIPT;
    const events = advance(message, script, this.opts.numbers[0] ?? "");
    if (callbackUrl === undefined) return;
    const target = {
      messageSid: message.sid,
      url: callbackUrl,
      authToken: this.opts.authToken,
      opts: script.opts,
    };
    await postCallbacks(
      events,
      target,
      (record) => {
        this.callbackLog.push(record);
        if (this.callbackLog.length > MAX_STORED) this.callbackLog.shift();
      },
      this.stopping.signal,
    );
  }
}

/** Map.set that drops the oldest entry beyond MAX_STORED. */
function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.set(key, value);
  const oldest = map.keys().next();
  if (map.size > MAX_STORED && !oldest.done) map.delete(oldest.value);
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "twilio-request-id": newSid("RQ"),
  });
  res.end(body);
}

function authError(): ReturnType<typeof twilioError> {
  return twilioError(401, 20003, "Authenticate");
}

function notFound(path: string): ReturnType<typeof twilioError> {
  return twilioError(404, 20404, `The requested resource ${path} was not found`);
}
