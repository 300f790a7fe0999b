import { describe, expect, it } from "vitest";
import { ChannelCtcpClaims, CTCP_VERSION, ctcpReply, ReplyLimit } from "./ctcp.js";

describe("CTCP replies", () => {
  it.each([
    ["VERSION", `VERSION ${CTCP_VERSION}`],
    ["PING 1795330000", "PING 1795330000"],
    ["PING", null],
    ["TIME", null],
    ["DCC SEND x 1 2 3", null],
    ["ACTION waves", null],
  ])("answers %j with %j", (query, reply) => {
    expect(ctcpReply(query)).toBe(reply);
  });

  it("limits the replies of one connection to a burst, then one per interval", () => {
    let now = 0;
    const limit = new ReplyLimit(3, 2_000, () => now);
    expect([1, 2, 3, 4].map(() => limit.tryTake())).toEqual([true, true, true, false]);
    now += 1_999;
    expect(limit.tryTake()).toBe(false);
    now += 1;
    expect([limit.tryTake(), limit.tryTake()]).toEqual([true, false]);
  });

  it("lets one connection answer a channel's query within the window, whatever the case", async () => {
    let now = 0;
    const claims = new ChannelCtcpClaims(undefined, 2_000, () => now);
    expect(await claims.claim("irc.example.net", "#Chat")).toBe(true);
    expect(await claims.claim("irc.example.net", "#chat")).toBe(false);
    expect(await claims.claim("irc.example.net", "#other")).toBe(true);
    now += 2_000;
    expect(await claims.claim("IRC.example.net", "#chat")).toBe(true);
  });

  it("leaves the answer to another instance that claimed the channel first, or to none when unsure", async () => {
    const taken = new Set<string>();
    const shared = (server: string, channel: string) => {
      const first = !taken.has(`${server} ${channel}`);
      taken.add(`${server} ${channel}`);
      return Promise.resolve(first);
    };
    const one = new ChannelCtcpClaims(shared);
    const two = new ChannelCtcpClaims(shared);
    expect(await one.claim("irc.example.net", "#chat")).toBe(true);
    expect(await two.claim("irc.example.net", "#chat")).toBe(false);
    const broken = new ChannelCtcpClaims(() => Promise.reject(new Error("Redis down")));
    expect(await broken.claim("irc.example.net", "#chat")).toBe(false);
  });
});
