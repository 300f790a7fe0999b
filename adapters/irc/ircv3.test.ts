/** IRCv3 message tags as the gateway reads them (server-time, msgid, escaped values). */
import { describe, expect, it } from "vitest";
import { parseTags } from "./ircv3.js";

describe("parseTags", () => {
  it.each([
    ["time=2026-01-02T03:04:05.678Z;msgid=abc", { time: "2026-01-02T03:04:05.678Z", msgid: "abc" }],
    ["inspircd.org/echo", { "inspircd.org/echo": "" }],
    ["+draft/reply=x;;a=", { "+draft/reply": "x", a: "" }],
    ["k=a\\:b\\sc\\\\d\\r\\n", { k: "a;b c\\d\r\n" }],
    ["k=trailing\\", { k: "trailing" }],
  ])("%s", (raw, tags) => {
    expect(parseTags(raw)).toEqual(tags);
  });
});
