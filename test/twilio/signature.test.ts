import twilio from "twilio";
import { describe, expect, it } from "vitest";
import { formBody, formParams, twilioSignature, type FormParams } from "./signature.js";

const TOKEN = "12345";

describe("X-Twilio-Signature", () => {
  it("matches the example in Twilio's webhook security guide", () => {
    const params = {
      CallSid: "CA1234567890ABCDE",
      Caller: "+12349013030",
      Digits: "1234",
      From: "+12349013030",
      To: "+18005551212",
    };
    expect(twilioSignature(TOKEN, "https://mycompany.com/myapp.php?foo=1&bar=2", params)).toBe(
      "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
    );
  });

  it.each<[string, string, FormParams]>([
    ["no parameters", "https://gw.example.org/sms", {}],
    ["a query string", "https://gw.example.org/sms?x=1&y=%20", { Body: "hi" }],
    ["a port", "http://127.0.0.1:8080/sms/status", { MessageStatus: "delivered", MessageSid: "SM1" }],
    ["non-ASCII text", "https://gw.example.org/sms", { Body: "Grüße 👋 – ça va ?", From: "+33612345678" }],
    ["an empty value", "https://gw.example.org/sms", { Body: "", NumMedia: "0" }],
    ["lower-case names after upper-case ones", "https://gw.example.org/sms", { b: "1", B: "2", a: "3" }],
    [
      "a repeated name",
      "https://gw.example.org/sms",
      { MediaUrl: ["https://b/2", "https://a/1"], To: "+1555" },
    ],
    ["a repeated name with the same value twice", "https://gw.example.org/sms", { X: ["v", "v", "a"] }],
  ])("equals twilio-node's expected signature with %s", (_, url, params) => {
    const mine = twilioSignature(TOKEN, url, params);
    // twilio-node's types say Record<string, any>; it reads arrays the same way.
    expect(mine).toBe(twilio.getExpectedTwilioSignature(TOKEN, url, params as Record<string, unknown>));
    expect(twilio.validateRequest(TOKEN, mine, url, params as Record<string, unknown>)).toBe(true);
  });

  it.each<[string, string, FormParams]>([
    ["another token", "https://gw.example.org/sms", { Body: "hi" }],
    ["another URL", "https://gw.example.org/sms2", { Body: "hi" }],
    ["a changed body", "https://gw.example.org/sms", { Body: "hi!" }],
  ])("is refused by validateRequest after %s", (what, url, params) => {
    const signed = twilioSignature(TOKEN, "https://gw.example.org/sms", { Body: "hi" });
    const token = what === "another token" ? "54321" : TOKEN;
    expect(twilio.validateRequest(token, signed, url, params)).toBe(false);
  });
});

describe("form encoding", () => {
  it.each<[string, Record<string, string | string[]>]>([
    ["To=%2B15550001111&Body=hi+there", { To: "+15550001111", Body: "hi there" }],
    ["MediaUrl=a&Body=x&MediaUrl=b", { MediaUrl: ["a", "b"], Body: "x" }],
    ["Body=%C3%A9%F0%9F%91%8B", { Body: "é👋" }],
    ["", {}],
  ])("reads %j", (body, params) => {
    expect(formParams(body)).toEqual(params);
    expect(formParams(formBody(params))).toEqual(params);
  });
});
