/**
 * Twilio's requests to the gateway: inbound SMS/MMS, status callbacks, and the media proxy that serves
 * inbound MMS without leaking the carrier's URL or the account's credentials.
 *
 * Every webhook's X-Twilio-Signature is checked against the configured public URL (behind a proxy the
 * request's own URL is not what Twilio signed): invalid → 403, nothing stored. Inbound messages are
 * persisted through deliver() before the 200, deduplicated by MessageSid; when Redis is down Twilio gets a
 * 503 and retries.
 */
import { randomBytes } from "node:crypto";
import { Readable, Transform, pipeline } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AdapterContext, Attachment, HttpContext, IdCodec } from "../../src/adapter.js";
import type { NumberDirectory } from "./numbers.js";
import { MAX_MEDIA_BYTES, MEDIA_TIMEOUT_SECONDS } from "./config.js";
import { downloadHeaders } from "../../src/http/downloads.js";
import type { SentRecords } from "./sent-records.js";
import { describeTwilioError, isTerminal } from "./twilio-errors.js";
import { loadOnce } from "../../src/load-once.js";

/** How long the media proxy serves an inbound MMS attachment. */
export const MEDIA_TTL_SECONDS = 30 * 24 * 3600;
/** Most attachments taken from one inbound MMS (Twilio sends at most 10). */
export const MAX_INBOUND_MEDIA = 10;
/** How long a status callback waits for the record of its message (the callback can beat create()'s answer). */
export const RECORD_WAIT_MS = 3_000;

const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
const SID = /^[A-Z]{2}[0-9a-fA-F]{32}$/;
/**
 * What Twilio puts in From/To: an E.164 number, a short code, an alphanumeric sender id (at most 11
 * characters, spaces allowed) or a channel address such as `whatsapp:+1…`. Anything else (control
 * characters above all) is refused before it can reach a message or a log line.
 */
const ADDRESS = /^[A-Za-z0-9+][A-Za-z0-9 +.:_-]{0,63}$/;

type Form = Record<string, string | string[] | undefined>;

function field(form: Form, name: string): string {
  const v = form[name];
  return (Array.isArray(v) ? v[0] : v) ?? "";
}

export interface WebhookDeps {
  ctx: AdapterContext;
  http: HttpContext;
  codec: IdCodec;
  numbers: NumberDirectory;
  records: SentRecords;
  accountSid: string;
  authToken: string;
  /** The media proxy's limits (defaults MAX_MEDIA_BYTES and MEDIA_TIMEOUT_SECONDS). */
  media?: { maxBytes: number; timeoutSeconds: number };
}

export const INBOUND_PATH = "/twilio/sms";
export const STATUS_PATH = "/twilio/status";

export function mountWebhooks(deps: WebhookDeps): void {
  const { http, ctx } = deps;
  const signatureFailures = ctx.metrics.counter(
    "webhook_signature_failures_total",
    "Twilio webhooks refused with 403 because X-Twilio-Signature was missing or wrong",
    ["path"],
  );
  const signed = (path: string, handler: (form: Form, reply: FastifyReply) => Promise<unknown>) =>
    http.route({
      method: "POST",
      url: path,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const form = (request.body ?? {}) as Form;
        const signature = request.headers["x-twilio-signature"];
        const url = http.publicUrlFor(path);
        if (
          typeof signature !== "string" ||
          !(await validTwilioSignature(deps.authToken, signature, url, form))
        ) {
          signatureFailures.inc({ path });
          ctx.log.warn({ path }, "webhook with an invalid signature refused");
          return reply.code(403).type("text/plain").send("invalid X-Twilio-Signature");
        }
        try {
          return await handler(form, reply);
        } catch (err) {
          ctx.log.warn({ err: (err as Error).message, path }, "webhook not stored; Twilio will retry");
          return reply.code(503).type("text/plain").send("temporarily unavailable; retry later");
        }
      },
    });

  signed(INBOUND_PATH, async (form, reply) => {
    const sid = field(form, "MessageSid");
    const from = field(form, "From");
    const to = field(form, "To");
    if (!SID.test(sid) || !ADDRESS.test(from) || !ADDRESS.test(to))
      return reply.code(400).type("text/plain").send("missing or malformed MessageSid, From or To");
    const body = field(form, "Body");
    const attachments = await proxyMedia(deps, form);
    const user = await deps.numbers.recipientOf(to, from);
    let contact: string | undefined;
    try {
      contact = `${deps.codec.encode(deps.codec.decode(from))}@${ctx.domain}`;
    } catch {
      contact = undefined; // a short code or an alphanumeric sender: no contact JID to answer to
    }
    if (!user || !contact) {
      await ctx.notifyAdmins(
        `An SMS from ${from} to ${to} could not be routed to a user (${user ? "sender is not a phone number" : "no user has this number or this conversation"}): ${body}`,
      );
      return reply.type("text/xml").send(EMPTY_TWIML);
    }
    await ctx.deliver(
      {
        kind: "message",
        to: user,
        from: contact,
        id: sid,
        type: "chat",
        // Conversations shows an attachment inline when the body is just its URL.
        body: body || attachments.map((a) => a.url).join("\n"),
        attachments,
      },
      { dedupeId: sid },
    );
    ctx.log.info({ jid: user, sid, media: attachments.length }, "inbound SMS stored");
    return reply.type("text/xml").send(EMPTY_TWIML);
  });

  signed(STATUS_PATH, async (form, reply) => {
    const sid = field(form, "MessageSid");
    const status = field(form, "MessageStatus").toLowerCase();
    if (!SID.test(sid) || !status)
      return reply.code(400).type("text/plain").send("missing MessageSid or MessageStatus");
    // A report before the final one (queued, sending, sent…) changes nothing the sender sees: answered without
    // a round trip to the store. Only final reports move the record, and the first of them wins.
    if (!isTerminal(status)) {
      ctx.log.debug({ sid, status }, "SMS status");
      return reply.code(200).send("");
    }
    let moved = await deps.records.advance(sid, status);
    for (let waited = 0; moved.kind === "missing" && waited < RECORD_WAIT_MS; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      moved = await deps.records.advance(sid, status);
    }
    // Not ours or older than the record's TTL; or a report that does not move the message forward: callbacks
    // come twice or out of order, never backwards, first final report wins.
    if (moved.kind !== "advanced") return reply.code(200).send("");
    const before = moved.before.status;
    const { from, id, contact = ctx.domain, receipt } = moved.before;
    if ((status === "delivered" || status === "read") && receipt === "1")
      await ctx.deliver(
        { kind: "receipt", to: from, from: contact, id: `receipt-${sid}`, receiptFor: id },
        { dedupeId: `final-${sid}` },
      );
    if (status === "failed" || status === "undelivered" || status === "canceled") {
      const code = Number(field(form, "ErrorCode")) || undefined;
      const { condition, text } = describeTwilioError(code, field(form, "ErrorMessage") || undefined);
      await ctx.deliver(
        { kind: "error", to: from, from: contact, id, condition, text },
        { dedupeId: `final-${sid}` },
      );
    }
    ctx.log.info({ sid, status, from: before }, "SMS status");
    return reply.code(200).send("");
  });

  mountMediaProxy(deps);
}

/** A stream that passes bytes on until more than `max` went through, then fails. */
function capped(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) done(new Error(`attachment larger than ${max} bytes`));
      else done(null, chunk);
    },
  });
}

/**
 * GET /media/:token: the carrier's file, fetched with the account's credentials and streamed through (never
 * held whole in memory), as a download (see src/http/downloads.ts): it is the carrier's content, not the
 * gateway's. A carrier that does not answer in time gets 504; a declared size over the cap 502 at once; a
 * body that turns out too large or too slow mid-way cuts the connection (the status is already sent).
 */
function mountMediaProxy(deps: WebhookDeps): void {
  const { http, ctx } = deps;
  const maxBytes = deps.media?.maxBytes ?? MAX_MEDIA_BYTES;
  const timeoutMs = (deps.media?.timeoutSeconds ?? MEDIA_TIMEOUT_SECONDS) * 1000;
  http.route({
    method: "GET",
    url: "/media/:token",
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      const { token = "" } = request.params as { token?: string };
      const entry = /^[\w-]{16,64}$/.test(token) ? await ctx.ids.get("media", token) : null;
      if (!entry?.url)
        return reply.code(404).type("text/plain").send("no such attachment (or it has expired)");
      const auth = Buffer.from(`${deps.accountSid}:${deps.authToken}`).toString("base64");
      // One deadline for the whole transfer; the client going away ends the carrier's transfer too.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new Error("media timeout")), timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        abort.abort();
      };
      reply.raw.once("close", finish);
      let upstream: Response;
      try {
        upstream = await fetch(entry.url, {
          headers: { authorization: `Basic ${auth}` },
          redirect: "follow",
          signal: abort.signal,
        });
      } catch (err) {
        finish();
        const timedOut =
          abort.signal.reason instanceof Error && abort.signal.reason.message === "media timeout";
        ctx.log.warn({ err: (err as Error).message, timedOut }, "MMS media not fetched from the carrier");
        return timedOut
          ? reply.code(504).type("text/plain").send("the carrier did not send the attachment in time")
          : reply.code(502).type("text/plain").send("the attachment could not be fetched from the carrier");
      }
      const declared = Number(upstream.headers.get("content-length") ?? "0");
      if (!upstream.ok || !upstream.body || declared > maxBytes) {
        finish();
        ctx.log.warn({ status: upstream.status, size: declared }, "MMS media refused from the carrier");
        return reply
          .code(502)
          .type("text/plain")
          .send(
            declared > maxBytes
              ? `the attachment is larger than ${maxBytes} bytes`
              : "the attachment could not be fetched from the carrier",
          );
      }
      // pipeline: an error on either side (too large, too slow, client gone) destroys both.
      const body = pipeline(
        Readable.fromWeb(upstream.body as WebReadableStream<Uint8Array>),
        capped(maxBytes),
        (err) => {
          finish();
          if (err) ctx.log.warn({ err: err.message }, "MMS media transfer cut");
        },
      );
      const type = upstream.headers.get("content-type") ?? entry.type;
      return downloadHeaders(reply, `media-${token.slice(0, 8)}`, type).send(body);
    },
  });
}

/** Stores each MediaUrlN behind an unguessable gateway URL. Only http(s) URLs from a signed request. */
async function proxyMedia(deps: WebhookDeps, form: Form): Promise<Attachment[]> {
  const count = Math.min(Number(field(form, "NumMedia")) || 0, MAX_INBOUND_MEDIA);
  const out: Attachment[] = [];
  for (let i = 0; i < count; i++) {
    const url = field(form, `MediaUrl${i}`);
    if (!/^https?:\/\//.test(url)) continue;
    const token = randomBytes(24).toString("base64url");
    await deps.ctx.ids.put(
      "media",
      token,
      { url, type: field(form, `MediaContentType${i}`) },
      MEDIA_TTL_SECONDS,
    );
    out.push({ url: deps.http.publicUrlFor(`/media/${token}`) });
  }
  return out;
}

/** The Twilio SDK (several MiB of heap), loaded with the first webhook: an idle gateway does not need it. */
const twilioSdk = loadOnce(async () => (await import("twilio")).default);

/** twilio.validateRequest. */
export async function validTwilioSignature(
  token: string,
  signature: string,
  url: string,
  form: Form,
): Promise<boolean> {
  return (await twilioSdk()).validateRequest(token, signature, url, form);
}
