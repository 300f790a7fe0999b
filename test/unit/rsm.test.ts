import { xml } from "@xmpp/component";
import { describe, expect, it } from "vitest";
import { pageOf, parseRsm, type RsmRequest } from "../../src/xmpp/rsm.js";
import { GatewayError } from "../../src/xmpp/errors.js";

const RSM = "http://jabber.org/protocol/rsm";
const ALL = ["a", "b", "c", "d", "e"];
const LIMITS = { defaultMax: 2, maxMax: 3 };
const page = (request: RsmRequest | undefined) => pageOf(ALL, (x) => x, request, LIMITS);

describe("XEP-0059 result set management", () => {
  it.each([
    ["no request: the default page", undefined, ["a", "b"], 0],
    ["max", { max: 3 }, ["a", "b", "c"], 0],
    ["max above the limit is capped", { max: 50 }, ["a", "b", "c"], 0],
    ["after an item", { max: 2, after: "b" }, ["c", "d"], 2],
    ["after the next to last", { max: 2, after: "d" }, ["e"], 4],
    ["after the last: an empty page", { after: "e" }, [], 5],
    ["before an item", { max: 2, before: "d" }, ["b", "c"], 1],
    ["before near the start", { max: 3, before: "b" }, ["a"], 0],
    ["before empty: the last page", { max: 2, before: "" }, ["d", "e"], 3],
    ["from an index", { max: 2, index: 3 }, ["d", "e"], 3],
    ["max 0: the count only", { max: 0 }, [], 0],
  ] as const)("%s", (_what, request, items, firstIndex) => {
    const result = page(request);
    expect(result.items).toEqual(items);
    expect(result.count).toBe(5);
    expect(result.firstIndex).toBe(firstIndex);
    expect(result.first).toBe(items[0]);
    expect(result.last).toBe(items[items.length - 1]);
  });

  it("refuses a key that is not in the list with item-not-found", () => {
    expect(() => page({ after: "zz" })).toThrow(GatewayError);
    try {
      page({ before: "zz" });
    } catch (err) {
      expect((err as GatewayError).condition).toBe("item-not-found");
    }
  });

  it("reads a <set/>, and refuses nonsense with bad-request", () => {
    const query = (...children: ReturnType<typeof xml>[]) =>
      xml("query", {}, xml("set", { xmlns: RSM }, ...children));
    expect(parseRsm(xml("query", {}))).toBeUndefined();
    expect(parseRsm(query(xml("max", {}, "10"), xml("after", {}, "x@y")))).toEqual({ max: 10, after: "x@y" });
    expect(parseRsm(query(xml("before")))).toEqual({ before: "" });
    for (const bad of [
      query(xml("max", {}, "-1")),
      query(xml("max", {}, "ten")),
      query(xml("after")),
      query(xml("after", {}, "a"), xml("before", {}, "b")),
    ]) {
      try {
        parseRsm(bad);
        expect.unreachable();
      } catch (err) {
        expect((err as GatewayError).condition).toBe("bad-request");
      }
    }
  });
});
