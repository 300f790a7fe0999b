import http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { startSandbox, twimlReplies } from "./sandbox.js";

describe("TwiML replies", () => {
  it.each<[string, string[]]>([
    ['<?xml version="1.0" encoding="UTF-8"?><Response></Response>', []],
    ["<Response><Message>hi &amp; bye</Message></Response>", ["hi & bye"]],
    [
      "<Response><Message><Body>one</Body></Message><Message to='+1'>two</Message></Response>",
      ["one", "two"],
    ],
    ["", []],
  ])("in %j", (twiml, replies) => {
    expect(twimlReplies(twiml)).toEqual(replies);
  });
});

describe("SMS sandbox", () => {
  it("prints what the gateway sends and posts typed lines as incoming SMS", async () => {
    const got: URLSearchParams[] = [];
    const app = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        got.push(new URLSearchParams(body));
        res.writeHead(200, { "content-type": "text/xml" }).end("<Response><Message>ok</Message></Response>");
      });
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const webhookUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/sms/twilio/sms`;
    const input = new PassThrough();
    const output = new PassThrough();
    let printed = "";
    output.on("data", (c: Buffer) => (printed += c.toString()));
    const sandbox = await startSandbox({ numbers: ["+15550000001"], webhookUrl, input, output });
    try {
      const auth = "Basic " + Buffer.from(`AC${"0".repeat(32)}:sandbox-auth-token`).toString("base64");
      const res = await fetch(`${sandbox.fake.url}/2010-04-01/Accounts/AC${"0".repeat(32)}/Messages.json`, {
        method: "POST",
        headers: { authorization: auth },
        body: new URLSearchParams({ To: "+15551230001", From: "+15550000001", Body: "hello Bob" }),
      });
      expect(res.status).toBe(201);
      expect(printed).toContain("to +15551230001 from +15550000001: hello Bob");

      input.write("+15551230001> hi there\nnot a line\n");
      await expect.poll(() => printed).toContain("to +15551230001 from +15550000001: ok");
      expect(printed).toContain('? expected "+12025550123> text"');
      expect(got.map((p) => [p.get("From"), p.get("To"), p.get("Body")])).toEqual([
        ["+15551230001", "+15550000001", "hi there"],
      ]);
    } finally {
      await sandbox.stop();
      await new Promise((resolve) => app.close(resolve));
    }
  });
});
