import { describe, expect, it } from "vitest";
import { bounceText, bounceToken, isFailure, parseDeliveryStatus } from "./bounces.js";

const REPORT = [
  "Reporting-MTA: dns; mx.example.com",
  "Arrival-Date: Sat, 21 Nov 2026 10:00:00 +0000",
  "",
  "Final-Recipient: rfc822; friend@example.com",
  "Action: failed",
  "Status: 5.1.1",
  "Diagnostic-Code: smtp; 550 5.1.1 <friend@example.com>:",
  "  Recipient address rejected: User unknown",
  "",
].join("\r\n");

describe("bounces", () => {
  it("reads the recipient, action, status and the unfolded diagnostic of a delivery-status part", () => {
    expect(parseDeliveryStatus(REPORT)).toEqual([
      {
        recipient: "friend@example.com",
        action: "failed",
        status: "5.1.1",
        diagnostic: "550 5.1.1 <friend@example.com>: Recipient address rejected: User unknown",
      },
    ]);
    expect(parseDeliveryStatus("garbage")).toEqual([]);
  });

  it.each([
    ["bounces+AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"],
    ["Bounces+AbCdEfGhIjKlMnOpQrStUv", "AbCdEfGhIjKlMnOpQrStUv"],
    ["bounces+short", null],
    ["bounces+../../etc/passwd/xxxxxxxx", null],
    ["alice", null],
  ])("bounceToken(%s)", (local, token) => {
    expect(bounceToken(local)).toBe(token);
  });

  it.each([
    [
      { action: "failed", status: "5.1.1", diagnostic: "550 no such user" },
      true,
      "could not be delivered: 550 no such user",
    ],
    [
      { action: "delayed", status: "4.4.1", diagnostic: undefined },
      false,
      "is delayed; the mail system keeps trying (4.4.1)",
    ],
    [{ action: "delivered", status: "2.0.0", diagnostic: undefined }, false, "could not be delivered: 2.0.0"],
    [
      { action: undefined, status: "5.0.0", diagnostic: "bad\r\nBcc: x" },
      true,
      "could not be delivered: bad Bcc: x",
    ],
  ])("%o → failure %s", (status, failure, text) => {
    const s = { recipient: "friend@example.com", ...status };
    expect(isFailure(s)).toBe(failure);
    expect(bounceText({ to: "friend@example.com" }, s)).toContain(text);
  });
});
