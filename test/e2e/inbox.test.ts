/**
 * The inbound queue's write side against the bed's Redis: events of one domain enqueued in the same turn (an
 * IRC line to every user in a channel) are written together, each keeping its own answer (added, duplicate,
 * refused) and its place in the stream.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import { decodeEntry, ENQUEUE_BATCH, Inbox, InboxUnavailableError } from "../../src/delivery/inbox.js";
import { InvalidInboundEventError } from "../../src/delivery/refused.js";
import { DurableWrites } from "../../src/store/durable.js";
import { Keys } from "../../src/store/keys.js";
import type { LuaArg, LuaScript } from "../../src/store/lua.js";
import { sharedBed } from "../support/gateway.js";

const message = (domain: string, to: string, body: string): InboundEvent => ({
  kind: "message",
  to,
  from: `#ops%irc.example@${domain}`,
  id: `m-${randomUUID()}`,
  type: "groupchat",
  body,
});

describe("inbox writes", () => {
  let redis: Redis;
  let keys: Keys;
  let writes: number;
  let inbox: Inbox;

  beforeAll(() => {
    redis = new Redis(sharedBed().redis!.url, { enableAutoPipelining: true });
    keys = new Keys(`inbox-${randomUUID()}:`);
    const durable = new DurableWrites(redis, { minReplicas: 0, timeoutMs: 0 }, pino({ level: "silent" }));
    const counted = {
      eval: (script: LuaScript, k: readonly LuaArg[], a: readonly LuaArg[]) => {
        writes++;
        return durable.eval(script, k, a);
      },
    };
    inbox = new Inbox(redis, keys, counted);
  });

  afterAll(() => redis?.disconnect());

  const bodies = async (domain: string) =>
    (await redis.xrange(keys.inbox(domain), "-", "+")).map(([, fields]) => {
      const event = decodeEntry(fields);
      return event?.kind === "message" ? event.body : undefined;
    });

  it("writes a turn's events together, in order, each with its own answer", async () => {
    const domain = "irc.together.example";
    writes = 0;
    const answers = await Promise.allSettled([
      inbox.enqueue(domain, message(domain, "a@example.org", "one"), "net-1"),
      inbox.enqueue(domain, message(domain, "b@example.org", "two")),
      inbox.enqueue(domain, message(domain, "c@example.org", "one again"), "net-1"),
      inbox.enqueue(domain, { ...message(domain, "d@example.org", "bad"), to: "not a jid@@" }),
      inbox.enqueue(domain, message(domain, "e@example.org", "three"), "net-3"),
    ]);
    expect(
      answers.map((a) => (a.status === "fulfilled" ? a.value : (a.reason as Error).constructor)),
    ).toEqual([true, true, false, InvalidInboundEventError, true]);
    expect(writes).toBe(1);
    expect(await bodies(domain)).toEqual(["one", "two", "three"]);
    // A later turn still knows the network ids of the earlier one.
    await expect(
      inbox.enqueue(domain, message(domain, "a@example.org", "one, replayed"), "net-3"),
    ).resolves.toBe(false);
  });

  it(`writes at most ${ENQUEUE_BATCH} events per call, all of them, in order`, async () => {
    const domain = "irc.many.example";
    writes = 0;
    const count = ENQUEUE_BATCH * 2 + 5;
    const added = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        inbox.enqueue(domain, message(domain, `u${i}@example.org`, `n${i}`)),
      ),
    );
    expect(added.every(Boolean)).toBe(true);
    expect(writes).toBe(3);
    expect(await bodies(domain)).toEqual(Array.from({ length: count }, (_, i) => `n${i}`));
  });

  it("refuses every event of a turn with 'try later' when Redis cannot take them, and stores none", async () => {
    const domain = "irc.down.example";
    const down = new Redis(sharedBed().redis!.url, { lazyConnect: true, enableOfflineQueue: false });
    const failing = new Inbox(
      down,
      keys,
      new DurableWrites(down, { minReplicas: 0, timeoutMs: 0 }, pino({ level: "silent" })),
    );
    const answers = await Promise.allSettled([
      failing.enqueue(domain, message(domain, "a@example.org", "lost?"), "net-x"),
      failing.enqueue(domain, message(domain, "b@example.org", "lost?")),
    ]);
    expect(answers.map((a) => (a.status === "rejected" ? (a.reason as Error) : a.value))).toEqual([
      expect.any(InboxUnavailableError),
      expect.any(InboxUnavailableError),
    ]);
    expect(await redis.xlen(keys.inbox(domain))).toBe(0);
    // The network id was not taken either: the network's retry is stored.
    await expect(inbox.enqueue(domain, message(domain, "a@example.org", "retried"), "net-x")).resolves.toBe(
      true,
    );
  });
});
