import { describe, expect, it } from "vitest";
import { notifyCodec, sourceLocalpart } from "./codec.js";
import { inQuietHours, type Contact } from "./directory.js";
import { statusOf } from "./api.js";

describe("alert source → localpart", () => {
  it.each([
    ["Monitoring", "monitoring"],
    ["ops oncall", "ops-oncall"],
    ["team/db@prod", "team-db-prod"],
    ["..", "alerts"],
    ["Ünïcode", "n-code"],
    ["x".repeat(80), "x".repeat(64)],
  ])("%s → %s", (name, localpart) => {
    expect(sourceLocalpart(name)).toBe(localpart);
  });

  it("refuses a localpart that is not a source", () => {
    expect(() => notifyCodec.decode("a b")).toThrow(/no alert source/);
  });
});

describe("quiet hours", () => {
  const contact = (start: string, end: string, tz = "UTC"): Contact => ({
    jid: "a@example.org",
    channels: new Set(["xmpp"]),
    quiet: { start, end, tz },
  });
  it.each([
    ["22:00", "07:00", "2026-12-02T23:30:00Z", true],
    ["22:00", "07:00", "2026-12-02T06:59:00Z", true],
    ["22:00", "07:00", "2026-12-02T07:00:00Z", false],
    ["12:00", "13:00", "2026-12-02T12:30:00Z", true],
    ["12:00", "13:00", "2026-12-02T13:30:00Z", false],
    ["08:00", "08:00", "2026-12-02T08:00:00Z", false],
  ])("%s–%s at %s: %s", (start, end, at, quiet) => {
    expect(inQuietHours(contact(start, end), new Date(at))).toBe(quiet);
  });

  it("reads the hours in the user's time zone", () => {
    // 23:30 UTC is 00:30 in Paris (winter): inside 00:00–06:00 there, outside it in UTC.
    expect(inQuietHours(contact("00:00", "06:00", "Europe/Paris"), new Date("2026-12-02T23:30:00Z"))).toBe(
      true,
    );
    expect(inQuietHours(contact("00:00", "06:00"), new Date("2026-12-02T23:30:00Z"))).toBe(false);
  });
});

describe("recipient state per channel", () => {
  it("is the furthest state reached, with the time of each", () => {
    const [alice] = statusOf(
      {
        "a@x xmpp queued": "2026-12-02T10:00:00.000Z",
        "a@x xmpp sent": "2026-12-02T10:00:01.000Z",
        "a@x xmpp delivered": "2026-12-02T10:00:02.000Z",
        "a@x sms failed": "2026-12-02T10:01:00.000Z",
        "a@x ack": "2026-12-02T10:02:00.000Z",
        "a@x ackVia": "reply",
      },
      ["a@x"],
    );
    expect(alice).toEqual({
      jid: "a@x",
      acknowledged: { at: "2026-12-02T10:02:00.000Z", via: "reply" },
      channels: {
        xmpp: {
          state: "delivered",
          at: "2026-12-02T10:00:02.000Z",
          history: {
            queued: "2026-12-02T10:00:00.000Z",
            sent: "2026-12-02T10:00:01.000Z",
            delivered: "2026-12-02T10:00:02.000Z",
          },
        },
        sms: {
          state: "failed",
          at: "2026-12-02T10:01:00.000Z",
          history: { failed: "2026-12-02T10:01:00.000Z" },
        },
      },
    });
  });
});
