/**
 * The inbound queue's write side against the bed's Redis: events of one domain enqueued in the same turn (an
 * IRC line to every user in a channel) are written together, each keeping its own answer (added, duplicate,
 * refused) and its place in the stream; the write claims them for this instance's deliverer while it can take
 * them, and hands them over.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import {
  compareEntryIds,
  decodeEntry,
  DELIVERY_GROUP,
  ENQUEUE_BATCH,
  Inbox,
  InboxUnavailableError,
  type DirectReader,
} from "../../src/delivery/inbox.js";
import type { StreamEntry } from "../../src/delivery/inbox-reads.js";
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

/** A deliverer as the inbox sees it, recording what it is given. */
class Reader implements DirectReader {
  readonly taken: StreamEntry[][] = [];
  missedWrites = 0;
  constructor(
    readonly consumer: string,
    public accepting = true,
  ) {}
  take(entries: StreamEntry[]): void {
    this.taken.push(entries);
  }
  missed(): void {
    this.missedWrites++;
  }
}

const bodyOf = ([, fields]: StreamEntry) => {
  const event = decodeEntry(fields);
  return event?.kind === "message" ? event.body : undefined;
};

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

  const bodies = async (domain: string) => (await redis.xrange(keys.inbox(domain), "-", "+")).map(bodyOf);
  const pendingOf = async (domain: string, consumer: string) =>
    ((await redis.xpending(keys.inbox(domain), DELIVERY_GROUP, "-", "+", 1000, consumer)) as [string][]).map(
      ([id]) => id,
    );

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

  it("claims what it writes for the deliverer attached, unread entries before it, and hands them over in order", async () => {
    const domain = "sms.claimed.example";
    await redis.xgroup("CREATE", keys.inbox(domain), DELIVERY_GROUP, "0", "MKSTREAM");
    // Written by an instance that could not send it: no deliverer has read it.
    await inbox.enqueue(domain, message(domain, "z@example.org", "earlier"));
    const reader = new Reader("instance-a");
    inbox.attach(domain, reader);
    const answers = await Promise.all([
      inbox.enqueue(domain, message(domain, "a@example.org", "one"), "SM1"),
      inbox.enqueue(domain, message(domain, "b@example.org", "two")),
      inbox.enqueue(domain, message(domain, "a@example.org", "one again"), "SM1"),
    ]);
    expect(answers).toEqual([true, true, false]);
    expect(reader.taken.map((entries) => entries.map(bodyOf))).toEqual([["earlier", "one", "two"]]);
    // Pending under its name until it acknowledges them: read again from there if it never does.
    expect(await pendingOf(domain, "instance-a")).toEqual(reader.taken[0]!.map(([id]) => id));
    // Claimed once: a blocking read of the group finds nothing more.
    const read = await redis.xreadgroup(
      "GROUP",
      DELIVERY_GROUP,
      "instance-b",
      "STREAMS",
      keys.inbox(domain),
      ">",
    );
    expect(read).toBeNull();
    inbox.detach(domain, reader);
  });

  it("leaves the entries to the stream's readers while the deliverer cannot take them, or before the group exists", async () => {
    const domain = "sms.unclaimed.example";
    const reader = new Reader("instance-a", false);
    inbox.attach(domain, reader);
    await expect(inbox.enqueue(domain, message(domain, "a@example.org", "behind"))).resolves.toBe(true);
    expect(reader.taken).toEqual([]);
    // No group yet (a first start, or Redis lost its data): written all the same, read once it exists.
    reader.accepting = true;
    await expect(inbox.enqueue(domain, message(domain, "a@example.org", "no group"))).resolves.toBe(true);
    expect(reader.taken).toEqual([]);
    expect(await bodies(domain)).toEqual(["behind", "no group"]);
    await redis.xgroup("CREATE", keys.inbox(domain), DELIVERY_GROUP, "0");
    reader.accepting = false;
    await inbox.enqueue(domain, message(domain, "a@example.org", "still behind"));
    expect(reader.taken).toEqual([]);
    expect(await pendingOf(domain, "instance-a")).toEqual([]);
    // Caught up: the next write claims the three left, in order, with its own.
    reader.accepting = true;
    await inbox.enqueue(domain, message(domain, "a@example.org", "caught up"));
    expect(reader.taken.map((entries) => entries.map(bodyOf))).toEqual([
      ["behind", "no group", "still behind", "caught up"],
    ]);
    inbox.detach(domain, reader);
  });

  it("tells the deliverer to read its pending list when a write that may have claimed entries fails", async () => {
    const domain = "sms.failed.example";
    const down = new Redis(sharedBed().redis!.url, { lazyConnect: true, enableOfflineQueue: false });
    const failing = new Inbox(
      down,
      keys,
      new DurableWrites(down, { minReplicas: 0, timeoutMs: 0 }, pino({ level: "silent" })),
    );
    const reader = new Reader("instance-a");
    failing.attach(domain, reader);
    await expect(failing.enqueue(domain, message(domain, "a@example.org", "lost?"))).rejects.toThrow(
      InboxUnavailableError,
    );
    expect(reader.missedWrites).toBe(1);
    expect(reader.taken).toEqual([]);
  });

  it("orders entry ids as the stream does", () => {
    const ids = ["10-0", "9-5", "9-10", "1700000000000-1", "9-0"];
    expect([...ids].sort(compareEntryIds)).toEqual(["9-0", "9-5", "9-10", "10-0", "1700000000000-1"]);
  });
});
