/** IRC events on their way to the store: one the inbound schema refuses does not hold up the rest. */
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { InvalidInboundEventError, type AdapterContext, type InboundEvent } from "../../src/adapter.js";
import { PAUSE_READING_ABOVE, RESUME_READING_BELOW, StoreQueue, type QueuedSession } from "./store-queue.js";

const event = (id: string): InboundEvent => ({
  kind: "message",
  to: "alice@example.org",
  from: "#c%irc.example.org@irc.example.org/bob",
  id,
  body: id,
});

describe("StoreQueue", () => {
  it("drops a refused event at once and stores the ones after it", async () => {
    const stored: string[] = [];
    let lost = 0;
    const ctx = {
      log: pino({ level: "silent" }),
      metrics: { counter: () => ({ inc: (n = 1) => (lost += n) }) },
      deliver: (e: InboundEvent) => {
        if (e.kind === "message" && e.id === "bad")
          return Promise.reject(new InvalidInboundEventError(["id: bad"]));
        stored.push(e.kind === "message" ? e.id : e.kind);
        return Promise.resolve(true);
      },
    } as unknown as AdapterContext;
    const session = {
      user: "alice@example.org",
      pauseReading: () => true,
      resumeReading: () => undefined,
    } satisfies QueuedSession;
    await new StoreQueue(ctx).emit(session, [event("one"), event("bad"), event("two")]);
    expect(stored).toEqual(["one", "two"]);
    expect(lost).toBe(1);
  }, 5_000);

  it("pauses reading from the IRC server while too many events wait, and resumes once the store caught up", async () => {
    // The store answers when the test lets it: events pile up as under a burst.
    const stored: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const ctx = {
      log: pino({ level: "silent" }),
      metrics: { counter: () => ({ inc: () => undefined }) },
      deliver: async (e: InboundEvent) => {
        await gate;
        stored.push(e.kind === "message" ? e.id : e.kind);
        return true;
      },
    } as unknown as AdapterContext;
    const reading: string[] = [];
    let paused = false;
    const session = {
      user: "alice@example.org",
      pauseReading: () => {
        if (paused) return false;
        paused = true;
        reading.push(`paused with ${stored.length} stored`);
        return true;
      },
      resumeReading: () => {
        if (!paused) return;
        paused = false;
        reading.push(`resumed with ${stored.length} stored`);
      },
    } satisfies QueuedSession;
    const queue = new StoreQueue(ctx);
    const total = PAUSE_READING_ABOVE * 2;
    let last: Promise<unknown> = Promise.resolve();
    for (let i = 0; i < total; i++) last = queue.emit(session, [event(`e${i}`)]);
    expect(reading).toEqual(["paused with 0 stored"]);
    open();
    await last;
    // Every event stored, in order; reading resumed once fewer than RESUME_READING_BELOW waited.
    expect(stored).toEqual(Array.from({ length: total }, (_, i) => `e${i}`));
    expect(reading).toEqual([
      "paused with 0 stored",
      `resumed with ${total - RESUME_READING_BELOW + 1} stored`,
    ]);
  }, 5_000);
});
