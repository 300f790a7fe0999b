import { describe, expect, it } from "vitest";
import type { StoredMessage } from "./messages.js";
import { advance, callbackOrder, checkScript, DEFAULT_SCRIPT, type ScriptOptions } from "./status-script.js";

const message = (over: Partial<StoredMessage> = {}): StoredMessage => ({
  sid: "SM1",
  accountSid: "AC1",
  to: "+15551230001",
  from: "+15550000001",
  messagingServiceSid: null,
  body: "hi",
  mediaUrls: [],
  status: "queued",
  errorCode: null,
  dateCreated: new Date(0),
  dateUpdated: new Date(0),
  dateSent: null,
  ...over,
});

describe("callback order", () => {
  it.each<[ScriptOptions, string[]]>([
    [{}, ["sent", "delivered"]],
    [{ reverse: true }, ["delivered", "sent"]],
    [{ duplicate: true }, ["sent", "sent", "delivered", "delivered"]],
    [{ duplicate: true, reverse: true }, ["delivered", "delivered", "sent", "sent"]],
  ])("with %j", (opts, order) => {
    expect(callbackOrder(["sent", "delivered"], opts)).toEqual(order);
  });
});

describe("a message following its script", () => {
  it.each<[string, readonly string[], ScriptOptions, Partial<StoredMessage>, (string | undefined)[]]>([
    [
      "the default",
      DEFAULT_SCRIPT.steps,
      {},
      { status: "delivered", errorCode: null },
      [undefined, undefined],
    ],
    [
      "undelivered",
      ["sent", "undelivered"],
      {},
      { status: "undelivered", errorCode: 30003 },
      [undefined, "30003"],
    ],
    ["failed", ["failed"], {}, { status: "failed", errorCode: 30008 }, ["30008"]],
    [
      "failed with a code",
      ["failed"],
      { errorCode: 30006 },
      { status: "failed", errorCode: 30006 },
      ["30006"],
    ],
    ["no step", [], {}, { status: "queued", dateSent: null }, []],
  ])("%s", (_, steps, opts, final, errorCodes) => {
    const m = message();
    const events = advance(m, checkScript(steps, opts), "+15550000009");
    expect(m).toMatchObject(final);
    expect(events.map((e) => e.params.MessageStatus)).toEqual(steps);
    expect(events.map((e) => e.params.ErrorCode)).toEqual(errorCodes);
    expect(events.every((e) => e.params.From === "+15550000001")).toBe(true);
  });

  it("sets the send date once sent", () => {
    const m = message();
    advance(m, DEFAULT_SCRIPT, "+15550000009");
    expect(m.dateSent).toBeInstanceOf(Date);
  });

  it("gives a Messaging Service send the sender it picked", () => {
    const m = message({ from: null, messagingServiceSid: "MG1" });
    const [event] = advance(m, DEFAULT_SCRIPT, "+15550000009");
    expect(m.from).toBe("+15550000009");
    expect(event?.params).toMatchObject({ From: "+15550000009", MessagingServiceSid: "MG1" });
  });

  it("refuses an unknown state", () => {
    expect(() => checkScript(["sent", "read-by-cat"])).toThrow(/read-by-cat/);
  });
});
