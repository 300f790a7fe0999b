/** How a connection reads the server's ISUPPORT and channel modes (roster.ts). */
import { describe, expect, it } from "vitest";
import { DEFAULT_SUPPORT, parseModes, parseSupport, withPrefix } from "./roster.js";

const RICH = parseSupport(
  ["alice", "PREFIX=(qaohv)~&@%+", "CHANMODES=beI,k,lf,imnpst", "are supported"],
  DEFAULT_SUPPORT,
);

describe("ISUPPORT", () => {
  it("reads PREFIX and CHANMODES, and keeps the defaults for what a line does not say", () => {
    expect([...RICH.prefixes]).toEqual([
      ["q", "~"],
      ["a", "&"],
      ["o", "@"],
      ["h", "%"],
      ["v", "+"],
    ]);
    expect(RICH.chanModes).toEqual(["beI", "k", "lf", "imnpst"]);
    expect(parseSupport(["alice", "NICKLEN=30"], RICH)).toEqual(RICH);
  });
});

describe("channel modes", () => {
  it("gives each mode its parameter as CHANMODES and PREFIX say", () => {
    expect(parseModes("+ovk-l+b", ["carol", "dave", "key", "*!*@spam"], RICH)).toEqual([
      { set: true, mode: "o", arg: "carol" },
      { set: true, mode: "v", arg: "dave" },
      { set: true, mode: "k", arg: "key" },
      { set: false, mode: "l" },
      { set: true, mode: "b", arg: "*!*@spam" },
    ]);
  });

  it("keeps prefixes in the server's order of power", () => {
    expect(withPrefix("+", { set: true, mode: "o", arg: "x" }, RICH)).toBe("@+");
    expect(withPrefix("~@+", { set: false, mode: "o", arg: "x" }, RICH)).toBe("~+");
  });
});
