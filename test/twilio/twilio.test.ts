/**
 * The fake against the official twilio SDK, used the way the SMS adapter uses it: an injected HTTP client
 * that sends every request to the fake, status callbacks checked with twilio.validateRequest.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTwilioFake, type TwilioFake } from "./server.js";
import { formParams } from "./signature.js";

const SID = "AC" + "5".repeat(32);
const TOKEN = "f".repeat(32);
const OURS = "+15550000001";
const ALICE = "+15551230001";

/** Sends the SDK's requests (built for https://api.twilio.com) to the fake, over kept-alive sockets. */
class LocalRequestClient extends twilio.RequestClient {
  constructor(
    private readonly base: string,
    opts: { timeout?: number; autoRetry?: boolean } = {},
  ) {
    super({ keepAlive: true, ...opts });
    // The SDK builds only an https agent; the fake speaks plain http, so keep-alive needs an http agent.
    this.axios.defaults.httpAgent = new http.Agent({ keepAlive: true });
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    const uri = new URL(opts.uri);
    return super.request<TData>({ ...opts, uri: this.base + uri.pathname + uri.search });
  }
}

interface Received {
  path: string;
  signature: string;
  params: Record<string, string>;
  body: string;
}

/** A little application: /status records status callbacks, /sms answers inbound messages with TwiML. */
async function startReceiver(): Promise<{ url: string; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      const params = formParams(body) as Record<string, string>;
      const signature = String(req.headers["x-twilio-signature"] ?? "");
      got.push({ path: req.url ?? "", signature, params, body });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${req.url ?? ""}`;
      if (!twilio.validateRequest(TOKEN, signature, url, params)) return void res.writeHead(403).end();
      const twiml = new twilio.twiml.MessagingResponse();
      if (req.url?.startsWith("/sms")) twiml.message(`got: ${params.Body ?? ""}`);
      res.writeHead(200, { "content-type": "text/xml" }).end(twiml.toString());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  return { url, got, close };
}

let fake: TwilioFake;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
const client = (token = TOKEN, opts: { timeout?: number; autoRetry?: boolean; accountSid?: string } = {}) =>
  twilio(SID, token, { httpClient: new LocalRequestClient(fake.url, opts), accountSid: opts.accountSid });

beforeAll(async () => {
  fake = await startTwilioFake({ accountSid: SID, authToken: TOKEN, numbers: [OURS, "+15550000002"] });
  receiver = await startReceiver();
});
afterAll(async () => {
  await fake.stop();
  await receiver.close();
});
afterEach(async () => {
  await fake.idle();
  fake.reset();
  receiver.got.length = 0;
});

const statuses = (): string[] => receiver.got.map((r) => r.params.MessageStatus ?? "");

describe("Messages API through the twilio SDK", () => {
  it("creates a message and answers with a MessageInstance", async () => {
    const m = await client().messages.create({ to: ALICE, from: OURS, body: "hello" });
    expect(m.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(m).toMatchObject({ status: "queued", to: ALICE, from: OURS, body: "hello", numSegments: "1" });
    expect(m.direction).toBe("outbound-api");
    expect(m.dateCreated).toBeInstanceOf(Date);
    expect(fake.sent()).toMatchObject([
      { sid: m.sid, to: ALICE, form: { To: ALICE, From: OURS, Body: "hello" } },
    ]);
    await fake.idle();
    expect((await client().messages(m.sid).fetch()).status).toBe("delivered");
  });

  it("also works with api.baseUrl pointed at the fake", async () => {
    const c = twilio(SID, TOKEN);
    c.api.baseUrl = fake.url;
    expect((await c.messages.create({ to: ALICE, from: OURS, body: "x" })).status).toBe("queued");
  });

  it.each([
    ["a wrong auth token", "wrong", undefined],
    ["another account's SID in the path", TOKEN, "AC" + "6".repeat(32)],
  ])("refuses %s with 401 code 20003 and sends nothing", async (_, token, accountSid) => {
    const send = client(token, { accountSid }).messages.create({ to: ALICE, from: OURS, body: "x" });
    await expect(send).rejects.toBeInstanceOf(twilio.RestException);
    await expect(send).rejects.toMatchObject({ status: 401, code: 20003, message: "Authenticate" });
    expect(fake.sent()).toEqual([]);
  });

  it.each([
    [{ to: "5551230001", from: OURS, body: "x" }, 21211],
    [{ to: ALICE, from: "+15559999999", body: "x" }, 21606],
    [{ to: ALICE, from: OURS, body: "x".repeat(1601) }, 21617],
    [{ to: ALICE, from: OURS }, 21602],
  ])("refuses %j with 400 code %i", async (params, code) => {
    const send = client().messages.create(params);
    await expect(send).rejects.toMatchObject({
      status: 400,
      code,
      moreInfo: `https://www.twilio.com/docs/errors/${code}`,
    });
    expect(fake.sent()).toEqual([]);
  });

  it("refuses a create without To (which the SDK itself would not send) with 21604", async () => {
    const res = await fetch(`${fake.url}/2010-04-01/Accounts/${SID}/Messages.json`, {
      method: "POST",
      headers: { authorization: "Basic " + Buffer.from(`${SID}:${TOKEN}`).toString("base64") },
      body: new URLSearchParams({ From: OURS, Body: "x" }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 21604, status: 400 });
  });

  it("answers 500 once, then accepts the retried create", async () => {
    fake.fail({ status: 500, times: 1 });
    const c = client();
    await expect(c.messages.create({ to: ALICE, from: OURS, body: "x" })).rejects.toMatchObject({
      status: 500,
    });
    await c.messages.create({ to: ALICE, from: OURS, body: "x" });
    expect(fake.sent()).toHaveLength(1);
    expect(fake.requests).toBe(2);
  });

  it("lets the SDK's autoRetry ride out two 429 answers", async () => {
    fake.fail({ status: 429, times: 2 });
    await client(TOKEN, { autoRetry: true }).messages.create({ to: ALICE, from: OURS, body: "x" });
    expect(fake.requests).toBe(3);
    expect(fake.sent()).toHaveLength(1);
  });

  it("creates a hung request's message but never answers it; the next one goes through", async () => {
    fake.hang(1);
    const c = client(TOKEN, { timeout: 300 });
    await expect(c.messages.create({ to: ALICE, from: OURS, body: "x" })).rejects.toThrow(/timeout/i);
    // The request reached Twilio: the message exists though the client never learnt its sid.
    expect(fake.sent().map((m) => m.body)).toEqual(["x"]);
    await c.messages.create({ to: ALICE, from: OURS, body: "y" });
    expect(fake.sent().map((m) => m.body)).toEqual(["x", "y"]);
  });
});

describe("status callbacks", () => {
  const send = (to: string, extra: { messagingServiceSid?: string; from?: string } = { from: OURS }) =>
    client().messages.create({
      to,
      body: "x",
      statusCallback: `${receiver.url}/status?user=alice`,
      ...extra,
    });

  it("posts sent then delivered, each signed so that validateRequest accepts it", async () => {
    const m = await send(ALICE);
    await fake.idle();
    expect(statuses()).toEqual(["sent", "delivered"]);
    for (const r of receiver.got) {
      expect(twilio.validateRequest(TOKEN, r.signature, `${receiver.url}/status?user=alice`, r.params)).toBe(
        true,
      );
      expect(r.params).toMatchObject({
        MessageSid: m.sid,
        SmsSid: m.sid,
        AccountSid: SID,
        From: OURS,
        To: ALICE,
      });
    }
    expect(fake.callbacks().map((c) => c.answer?.status)).toEqual([200, 200]);
  });

  it("follows a failing script, with the error code in the callback and the resource", async () => {
    fake.script(ALICE, ["sending", "undelivered"], { errorCode: 30007 });
    const m = await send(ALICE);
    await fake.idle();
    expect(statuses()).toEqual(["sending", "undelivered"]);
    expect(receiver.got.map((r) => r.params.ErrorCode)).toEqual([undefined, "30007"]);
    expect(await client().messages(m.sid).fetch()).toMatchObject({ status: "undelivered", errorCode: 30007 });
  });

  it("can send every callback twice, last state first", async () => {
    fake.script(ALICE, ["sent", "delivered"], { duplicate: true, reverse: true });
    await send(ALICE);
    await fake.idle();
    expect(statuses()).toEqual(["delivered", "delivered", "sent", "sent"]);
    expect(receiver.got[0]?.body).toBe(receiver.got[1]?.body);
  });

  it("names the sender a Messaging Service picked", async () => {
    const m = await send(ALICE, { messagingServiceSid: "MG" + "7".repeat(32) });
    expect(m).toMatchObject({ status: "accepted", from: null, numSegments: "0" });
    await fake.idle();
    expect(receiver.got[0]?.params).toMatchObject({ From: OURS, MessagingServiceSid: "MG" + "7".repeat(32) });
  });
});

describe("inbound webhooks and media", () => {
  it("posts a signed inbound SMS and hands back the application's TwiML", async () => {
    const res = await fake.sendInbound({
      from: ALICE,
      to: OURS,
      body: "hi",
      webhookUrl: `${receiver.url}/sms`,
    });
    expect(res.status).toBe(200);
    expect(res.body).toContain("<Message>got: hi</Message>");
    expect(receiver.got[0]?.params).toMatchObject({ From: ALICE, To: OURS, Body: "hi", NumMedia: "0" });
  });

  it("sends a forged inbound that validateRequest refuses", async () => {
    const res = await fake.sendInbound({
      from: ALICE,
      to: OURS,
      body: "hi",
      webhookUrl: `${receiver.url}/sms`,
      forge: true,
    });
    expect(res.status).toBe(403);
  });

  it("replays the very same request", async () => {
    const first = await fake.sendInbound({
      from: ALICE,
      to: OURS,
      body: "once",
      webhookUrl: `${receiver.url}/sms`,
    });
    expect((await fake.replay(first.request)).status).toBe(200);
    const [a, b] = receiver.got;
    expect(b).toEqual(a);
  });

  it("serves media behind Basic auth and passes it in an MMS", async () => {
    const url = fake.media("image/png", Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    expect((await fetch(url)).status).toBe(401);
    const auth = { authorization: "Basic " + Buffer.from(`${SID}:${TOKEN}`).toString("base64") };
    const res = await fetch(url, { headers: auth });
    expect([res.status, res.headers.get("content-type")]).toEqual([200, "image/png"]);
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([0x89, 0x50, 0x4e, 0x47]);

    const media = [{ url, contentType: "image/png" }];
    await fake.sendInbound({ from: ALICE, to: OURS, media, webhookUrl: `${receiver.url}/sms` });
    expect(receiver.got[0]?.params).toMatchObject({
      NumMedia: "1",
      MediaUrl0: url,
      MediaContentType0: "image/png",
    });
    expect(receiver.got[0]?.params.MessageSid).toMatch(/^MM/);

    const mms = await client().messages.create({ to: ALICE, from: OURS, mediaUrl: [url] });
    expect(mms).toMatchObject({ numMedia: "1" });
    expect(mms.sid).toMatch(/^MM/);
  });
});
