/** The records of sent SMS and their status reports, against the test bed's Redis. */
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { sharedBed } from "../../test/support/gateway.js";
import { RedisIdMap } from "../../src/store/id-map.js";
import { Keys } from "../../src/store/keys.js";
import { SentRecords } from "./sent-records.js";

describe("SentRecords", () => {
  const redis = new Redis(sharedBed().redis!.url);
  const key = new Keys(`sent-records-test-${process.pid}-${Date.now()}:`).adapterKey("sms");
  const legacy = new RedisIdMap(redis, key);
  const records = new SentRecords(redis, key, legacy);
  afterAll(() => redis.disconnect());
  const record = { from: "bob@localhost/phone", id: "s1", contact: "+12025550100@sms", receipt: "1" };

  it("moves a message forward once per status, whatever order and however many times the reports come", async () => {
    await records.put("SM1", { ...record, status: "queued" });
    // Twilio's callbacks at the same time, repeated and out of order.
    const reports = ["delivered", "sent", "sending", "delivered", "sent", "failed", "sending", "delivered"];
    const moves = await Promise.all(reports.map((status) => records.advance("SM1", status)));
    const moved = moves.flatMap((m, i) => (m.kind === "advanced" ? [reports[i]] : []));
    // Never backwards: once delivered (final) is recorded, nothing moves it again, not even "failed".
    expect(moved.filter((s) => s === "delivered")).toHaveLength(1);
    expect(moved.indexOf("failed")).toBe(-1);
    expect(await records.advance("SM1", "undelivered")).toEqual({ kind: "stale" });
    expect(await records.advance("SM1", "sent")).toEqual({ kind: "stale" });
  });

  it("gives the record as it was before the report, and never moves it back", async () => {
    await records.put("SM2", { ...record, status: "queued" });
    expect(await records.advance("SM2", "sent")).toEqual({
      kind: "advanced",
      before: { ...record, status: "queued" },
    });
    expect(await records.advance("SM2", "sending")).toEqual({ kind: "stale" });
    expect(await records.advance("SM2", "delivered")).toEqual({
      kind: "advanced",
      before: { ...record, status: "sent" },
    });
  });

  it("knows no record for a message it did not send", async () => {
    expect(await records.advance("SM3", "delivered")).toEqual({ kind: "missing" });
  });

  it("takes over the record of a message sent before an upgrade (kept in the id map)", async () => {
    await legacy.put("sid", "SM4", { ...record, status: "sent" }, 3600);
    expect(await records.advance("SM4", "delivered")).toEqual({
      kind: "advanced",
      before: { ...record, status: "sent" },
    });
    expect(await records.advance("SM4", "delivered")).toEqual({ kind: "stale" });
  });
});
