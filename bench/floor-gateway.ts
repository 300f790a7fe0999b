/**
 * The least an SMS gateway can do per message and keep the product's promises, for the open-loop bench to
 * measure beside the gateway (`BENCH_OPENLOOP_GATEWAY=bench/floor-gateway.ts`, paths sms-out and sms-in):
 * what the I/O alone costs on this machine, so that the gateway's figures split into that floor and its own
 * code. Not a gateway: no registrations, no limits but a counter, no errors, no reconnects.
 *
 * What it keeps, each in the fewest round trips: an SMS out is claimed in Redis before it goes to the API
 * (never sent twice), posted once on a keep-alive connection, and its sid recorded with the outcome (one write,
 * not waited for); a status callback's signature is checked and only the final one reads the record (one round
 * trip). A webhook's signature is checked, its sid remembered and its event appended to a stream in one round
 * trip before the 200, and the stanza goes out with the others of the same moment in one write, behind a ping,
 * whose pong deletes the entries (one write, not waited for). Where the gateway reads its inbox back through a
 * consumer group, this delivers straight from the webhook: the floor under either design.
 *
 * Run by bench/openloop.ts as the gateway is: `--config FILE` (the gateway's config; its sms adapter and its
 * ports), secrets from the environment, `/readyz` on the private port once the component stream is online.
 */
import http from "node:http";
import { readFileSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import { Redis } from "ioredis";
import { component, xml, type Element } from "@xmpp/component";
import { twilioSignature, formParams } from "../test/twilio/signature.js";
import { isTerminal } from "../adapters/sms/twilio-errors.js";

interface FloorConfig {
  xmpp: { service: string; serverDomains: string[] };
  redis: { url: string; keyPrefix?: string };
  http: { port: number; private: { host: string; port: number } };
  adapters: {
    sms: {
      domain: string;
      secretEnv: string;
      twilio: { accountSid: string; authTokenEnv: string; apiBaseUrl: string };
      numbers: { dedicated: Record<string, string> };
    };
  };
}

const TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
// Claim an SMS out and count it against its sender: one round trip before the hand-off.
const CLAIM = `if redis.call('SET', KEYS[1], 'sending', 'NX', 'EX', 86400) == false then return 0 end
redis.call('INCR', KEYS[2]) return 1`;
// Remember a webhook's sid and append its event: one round trip before the 200.
const ENQUEUE = `if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 604800) == false then return '' end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[1])`;

const file = process.argv[process.argv.indexOf("--config") + 1] ?? "";
const config = JSON.parse(readFileSync(file, "utf8")) as FloorConfig;
const sms = config.adapters.sms;
const authToken = process.env[sms.twilio.authTokenEnv] ?? "";
const redis = new Redis(config.redis.url, {
  keyPrefix: config.redis.keyPrefix ?? "",
  enableAutoPipelining: true,
});
const inbox = `inbox:{${sms.domain}}`;
const ownerOf = new Map(Object.entries(sms.numbers.dedicated));
const numberOf = new Map([...ownerOf].map(([number, user]) => [user, number]));

// ---- the component stream: stanzas of one moment and their ping leave in one write
const xmpp = component({
  service: config.xmpp.service,
  domain: sms.domain,
  password: process.env[sms.secretEnv] ?? "",
});
let online = false;
let batch: { stanza: Element; entry: string }[] = [];
let pings = 0;
const pongs = new Map<string, string[]>();

function deliver(stanza: Element, entry: string): void {
  if (batch.length === 0) setImmediate(flush);
  batch.push({ stanza, entry });
}

function flush(): void {
  const sent = batch;
  batch = [];
  const id = `floor-ping-${++pings}`;
  pongs.set(
    id,
    sent.map((s) => s.entry),
  );
  const socket = xmpp.socket;
  socket?.cork();
  for (const s of sent) void xmpp.send(s.stanza);
  void xmpp.send(
    xml(
      "iq",
      { type: "get", id, to: config.xmpp.serverDomains[0], from: sms.domain },
      xml("ping", { xmlns: "urn:xmpp:ping" }),
    ),
  );
  socket?.uncork();
}

xmpp.on("stanza", (stanza: Element) => {
  const { name, attrs } = stanza;
  if (name === "iq" && attrs.type === "result" && attrs.id && pongs.has(attrs.id)) {
    const entries = pongs.get(attrs.id) ?? [];
    pongs.delete(attrs.id);
    if (entries.length) void redis.xdel(inbox, ...entries);
  } else if (name === "iq" && attrs.type === "set") {
    // Registration: the bench registers before it sends; nothing to keep (the config has the numbers).
    void xmpp.send(xml("iq", { type: "result", id: attrs.id, to: attrs.from, from: attrs.to }));
  } else if (name === "message" && attrs.type !== "error") {
    void sendSms(stanza).catch(() => undefined);
  }
});
xmpp.on("error", () => undefined);
xmpp.on("online", () => {
  xmpp.socket?.setNoDelay(true);
  online = true;
});

// ---- SMS out
const api = new URL(`/2010-04-01/Accounts/${sms.twilio.accountSid}/Messages.json`, sms.twilio.apiBaseUrl);
const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
const authorization = `Basic ${Buffer.from(`${sms.twilio.accountSid}:${authToken}`).toString("base64")}`;

async function sendSms(stanza: Element): Promise<void> {
  const from = (stanza.attrs.from ?? "").split("/")[0] ?? "";
  const to = (stanza.attrs.to ?? "").split("@")[0] ?? "";
  const id = stanza.attrs.id ?? "";
  const claimed = await redis.eval(CLAIM, 2, `out:{sms}:${from}:${id}`, `rate:{sms}:${from}`);
  if (claimed !== 1) return;
  const body = new URLSearchParams({
    From: numberOf.get(from) ?? "",
    To: to,
    Body: stanza.getChildText("body") ?? "",
    StatusCallback: `http://127.0.0.1:${config.http.port}/sms/twilio/status`,
  }).toString();
  const sid = await new Promise<string>((resolve, reject) => {
    const request = http.request(api, {
      method: "POST",
      agent,
      headers: {
        authorization,
        "content-type": "application/x-www-form-urlencoded",
        "content-length": Buffer.byteLength(body),
      },
    });
    request.once("error", reject);
    request.once("response", (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (c: Buffer) => chunks.push(c));
      response.once("end", () =>
        resolve(String((JSON.parse(Buffer.concat(chunks).toString()) as { sid: unknown }).sid)),
      );
    });
    request.end(body);
  });
  // The record and the outcome: one write, not waited for.
  void redis.hset(`sent:{sms}:${sid}`, "from", from, "id", id);
  void redis.set(`out:{sms}:${from}:${id}`, "accepted", "KEEPTTL");
}

// ---- webhooks
function signed(req: http.IncomingMessage, form: Record<string, string | string[]>): boolean {
  const given = Buffer.from(String(req.headers["x-twilio-signature"] ?? ""));
  const expected = Buffer.from(
    twilioSignature(authToken, `http://127.0.0.1:${config.http.port}${req.url}`, form),
  );
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function webhook(req: http.IncomingMessage, res: http.ServerResponse, text: string): Promise<void> {
  const form = formParams(text);
  const field = (name: string) => String(form[name] ?? "");
  if (!signed(req, form)) return void res.writeHead(403).end();
  if (req.url?.endsWith("/status")) {
    if (isTerminal(field("MessageStatus").toLowerCase()))
      await redis.hget(`sent:{sms}:${field("MessageSid")}`, "from");
    return void res.writeHead(200).end();
  }
  const user = ownerOf.get(field("To"));
  const contact = `${field("From")}@${sms.domain}`;
  const stanza = xml(
    "message",
    { to: user, from: contact, id: field("MessageSid"), type: "chat" },
    xml("body", {}, field("Body")),
  );
  const entry = (await redis.eval(
    ENQUEUE,
    2,
    inbox,
    `in:{${sms.domain}}:${field("MessageSid")}`,
    stanza.toString(),
  )) as string;
  res.writeHead(200, { "content-type": "text/xml" }).end(TWIML);
  if (entry) deliver(stanza, entry);
}

http
  .createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on(
      "end",
      () => void webhook(req, res, Buffer.concat(chunks).toString()).catch(() => res.writeHead(503).end()),
    );
  })
  .listen(config.http.port, "127.0.0.1");
http
  .createServer((req, res) => res.writeHead(req.url === "/readyz" && !online ? 503 : 200).end())
  .listen(config.http.private.port, config.http.private.host);

await xmpp.start();
