import { describe, expect, it } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import { DEDUPE_WINDOW_MS, Ordinals, type StoredLine } from "./archive.js";
import {
  fitChars,
  historyEvent,
  historyRange,
  insertHistory,
  MAX_HISTORY_LINES,
  PENDING_JOIN_MS,
  PendingJoins,
} from "./history.js";

const ROOM = "#chat%irc.example.net@irc.example.org";
const line = (id: string, body: string, nick = "bob"): StoredLine => ({
  id,
  ms: Number(id.split("-")[0]),
  nick,
  body,
});

describe("join history (XEP-0045 §7.2.14)", () => {
  const now = 1_800_000_000_000;
  it.each([
    ["no <history/>: the server's default", undefined, { max: 20 }],
    ["maxstanzas", { maxstanzas: 5 }, { max: 5 }],
    ["maxstanzas 0: none", { maxstanzas: 0 }, { max: 0 }],
    ["maxchars 0: none", { maxchars: 0 }, { max: 0 }],
    ["maxchars", { maxchars: 100 }, { max: MAX_HISTORY_LINES, maxChars: 100 }],
    ["seconds", { seconds: 60 }, { max: MAX_HISTORY_LINES, startMs: now - 60_000 }],
    ["since", { since: new Date(now - 5_000) }, { max: MAX_HISTORY_LINES, startMs: now - 5_000 }],
    [
      "seconds and since: the later",
      { seconds: 60, since: new Date(now - 5_000) },
      { max: MAX_HISTORY_LINES, startMs: now - 5_000 },
    ],
    ["a huge maxstanzas is capped", { maxstanzas: 1e9 }, { max: MAX_HISTORY_LINES }],
  ])("%s", (_name, request, range) => {
    expect(historyRange(request, 20, now)).toEqual(range);
  });

  it("keeps the newest lines whose text fits in maxchars", () => {
    const lines = [line("1-0", "aaaa"), line("2-0", "bb"), line("3-0", "c")];
    // nick "bob" (3) + text per line: 7, 5, 4.
    expect(fitChars(lines, 9).map((l) => l.id)).toEqual(["2-0", "3-0"]);
    expect(fitChars(lines, 3)).toEqual([]);
    expect(fitChars(lines, undefined)).toBe(lines);
  });

  it("makes a delayed message carrying the archive id", () => {
    expect(historyEvent("u@x/r", ROOM, line("1700000000000-3", "hi"))).toEqual({
      kind: "message",
      to: "u@x/r",
      from: `${ROOM}/bob`,
      id: "irc-h-1700000000000-3",
      type: "groupchat",
      body: "hi",
      delay: "2023-11-14T22:13:20.000Z",
      archiveId: "1700000000000-3",
    });
  });

  it("puts each joining resource's history between its occupants and its subject", async () => {
    const presence = (to: string): InboundEvent => ({ kind: "presence", to, from: `${ROOM}/me` });
    const subject = (to: string): InboundEvent => ({
      kind: "message",
      to,
      from: ROOM,
      id: `s-${to}`,
      type: "groupchat",
      body: "",
      subject: "topic",
    });
    const events = [presence("a"), subject("a"), presence("b"), subject("b")];
    const out = await insertHistory(events, (to) =>
      to === "a" ? Promise.resolve([historyEvent("a", ROOM, line("1-0", "old"))]) : undefined,
    );
    expect(out.map((e) => `${e.kind}:${e.to}:${e.kind === "message" ? e.body || "subject" : ""}`)).toEqual([
      "presence:a:",
      "message:a:old",
      "message:a:subject",
      "presence:b:",
      "message:b:subject",
    ]);
  });

  it("remembers a join's request once, for a limited time", () => {
    const joins = new PendingJoins();
    joins.add("u@x/r", ROOM.toUpperCase(), { maxstanzas: 3 }, 0);
    expect(joins.take("u@x/r", ROOM, 10)).toEqual({ request: { maxstanzas: 3 } });
    expect(joins.take("u@x/r", ROOM, 10)).toBeNull();
    joins.add("u@x/r", ROOM, undefined, 0);
    expect(joins.take("u@x/r", ROOM, PENDING_JOIN_MS)).toBeNull();
  });
});

describe("archive helpers", () => {
  it("counts a connection's repeats of the same line within the dedupe window", () => {
    const o = new Ordinals();
    expect([o.next("k", 0), o.next("k", 10), o.next("other", 20), o.next("k", 30)]).toEqual([1, 2, 1, 3]);
    expect(o.next("k", 30 + DEDUPE_WINDOW_MS)).toBe(1);
  });
});
