/**
 * Acknowledging delivered entries against the bed's Redis: they leave the consumer group's pending list, the
 * stream and the attempts hash, and the process remembers the latest CONFIRMED_MEMORY of them (an entry read
 * back from the pending list after its acknowledgement was lost is acknowledged again, not sent twice).
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Acknowledgements, CONFIRMED_MEMORY } from "../../src/delivery/acknowledgements.js";
import { DELIVERY_GROUP } from "../../src/delivery/inbox.js";
import { sharedBed } from "../support/gateway.js";

describe("acknowledgements", () => {
  let redis: Redis;
  const stream = `acks-${randomUUID()}:{inbox}`;
  const attempts = `acks-${randomUUID()}:{inbox}:attempts`;

  beforeAll(() => {
    redis = new Redis(sharedBed().redis!.url, { enableAutoPipelining: true });
  });
  afterAll(() => redis?.disconnect());

  it("takes delivered entries out of the pending list, the stream and the attempts hash", async () => {
    await redis.xgroup("CREATE", stream, DELIVERY_GROUP, "0", "MKSTREAM");
    const ids = [
      await redis.xadd(stream, "*", "e", "one"),
      await redis.xadd(stream, "*", "e", "two"),
      await redis.xadd(stream, "*", "e", "three"),
    ] as string[];
    await redis.xreadgroup("GROUP", DELIVERY_GROUP, "me", "COUNT", 10, "STREAMS", stream, ">");
    await redis.hset(attempts, ids[0]!, "2");
    const acks = new Acknowledgements(redis, [stream, attempts], pino({ level: "silent" }));
    acks.acknowledge(ids.slice(0, 2));
    await acks.settled();
    expect(await redis.xlen(stream)).toBe(1);
    expect((await redis.xpending(stream, DELIVERY_GROUP)).slice(0, 3)).toEqual([1, ids[2], ids[2]]);
    expect(await redis.hlen(attempts)).toBe(0);
    expect(ids.map((id) => acks.wasConfirmed(id))).toEqual([true, true, false]);
  });

  it(`remembers the latest ${CONFIRMED_MEMORY} confirmed entries, an entry confirmed again from then on`, async () => {
    const acks = new Acknowledgements(redis, [stream, attempts], pino({ level: "silent" }));
    const id = (i: number) => `1-${i}`;
    const batch = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => id(from + k));
    acks.acknowledge(batch(0, 100));
    // Confirmed again (its acknowledgement was lost): remembered as one of the latest.
    acks.acknowledge([id(3)]);
    for (let from = 100; from < CONFIRMED_MEMORY + 50; from += 100)
      acks.acknowledge(batch(from, Math.min(from + 100, CONFIRMED_MEMORY + 50)));
    await acks.settled();
    const known = (ids: string[]) => ids.filter((x) => acks.wasConfirmed(x)).length;
    // CONFIRMED_MEMORY + 51 confirmations: the 51 oldest slots are gone, id 3's first one among them.
    expect(known(batch(0, 51).filter((x) => x !== id(3)))).toBe(0);
    expect(acks.wasConfirmed(id(3))).toBe(true);
    expect(known(batch(51, CONFIRMED_MEMORY + 50))).toBe(CONFIRMED_MEMORY - 1);
  });
});
