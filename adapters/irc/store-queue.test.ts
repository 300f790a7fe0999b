/** IRC events on their way to the store: one the inbound schema refuses does not hold up the rest. */
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { InvalidInboundEventError, type AdapterContext, type InboundEvent } from "../../src/adapter.js";
import type { IrcSession } from "./connections.js";
import { StoreQueue } from "./store-queue.js";

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
    const session = { user: "alice@example.org", chain: Promise.resolve() } as unknown as IrcSession;
    await new StoreQueue(ctx).emit(session, [event("one"), event("bad"), event("two")]);
    expect(stored).toEqual(["one", "two"]);
    expect(lost).toBe(1);
  }, 5_000);
});
