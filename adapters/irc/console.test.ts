import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/xmpp/errors.js";
import { CONSOLE_MAX_BYTES, parseConsoleLine } from "./console.js";
import { duration, numericText } from "./numerics.js";

const refusal = (line: string): { condition: string; text: string } => {
  try {
    parseConsoleLine(line);
  } catch (err) {
    if (err instanceof GatewayError) return { condition: err.condition, text: err.message };
  }
  throw new Error(`${JSON.stringify(line)} was not refused`);
};

describe("server console lines", () => {
  it.each([
    ["WHOIS bob", { command: "WHOIS", params: ["bob"] }],
    ["/whois bob", { command: "WHOIS", params: ["bob"] }],
    ["  mode  #chan  +b  x!*@*  ", { command: "MODE", params: ["#chan", "+b", "x!*@*"] }],
    ["AWAY :gone fishing: back soon", { command: "AWAY", params: ["gone fishing: back soon"] }],
    ["AWAY", { command: "AWAY", params: [] }],
    ["list", { command: "LIST", params: [] }],
  ])("reads %j", (line, parsed) => {
    expect(parseConsoleLine(line)).toEqual(parsed);
  });

  it.each([
    ["PRIVMSG #x :hi", "not-allowed", /room/],
    ["notice bob :hi", "not-allowed", /contact/],
    ["JOIN #x", "not-allowed", /join the room/],
    ["QUIT :bye", "not-allowed", /leave the rooms/],
    ["KILL bob", "not-allowed", /WHOIS/],
    ["WHOIS bob\r\nPRIVMSG bob :injected", "bad-request", /line breaks/],
    ["WHOIS bob\nQUIT", "bad-request", /line breaks/],
    ["WHOIS b\0ob", "bad-request", /NUL/],
    ["   ", "bad-request", /Type an IRC command/],
    [`WHOIS ${"x".repeat(CONSOLE_MAX_BYTES)}`, "bad-request", /at most 510/],
  ])("refuses %j", (line, condition, text) => {
    const { condition: got, text: said } = refusal(line);
    expect(got).toBe(condition);
    expect(said).toMatch(text);
    expect(said).toMatch(/Nothing was sent/);
  });
});

describe("numerics in words", () => {
  it.each([
    [["311", "me", "bob", "~bob", "host.example", "*", "Bob Smith"], "bob is ~bob@host.example (Bob Smith)"],
    [["312", "me", "bob", "irc.example.net", "Example server"], "bob is on irc.example.net (Example server)"],
    [["317", "me", "bob", "3725", "0"], "bob has been idle 1 h 2 min 5 s, signed on 1970-01-01T00:00:00Z"],
    [["319", "me", "bob", "@#ops #chat "], "bob is in @#ops #chat"],
    [["671", "me", "bob", "is using a secure connection"], "bob is using a secure connection"],
    [["318", "me", "bob", "End of /WHOIS list."], ""],
    [["401", "me", "nobody", "No such nick/channel"], "nobody: No such nick/channel"],
    [
      ["251", "me", "There are 3 users and 0 services on 1 servers"],
      "There are 3 users and 0 services on 1 servers",
    ],
    [["322", "me", "#chat", "1", "\x02bold\x02 topic"], "#chat (1 user): *bold* topic"],
    [["303", "me", ""], "None of them is online."],
    [["372", "me", "- Be nice."], "Be nice."],
  ])("%j", ([command = "", ...params], text) => {
    expect(numericText({ command, params })).toBe(text);
  });

  it("writes durations", () => {
    expect(duration("0")).toBe("0 s");
    expect(duration("90061")).toBe("1 d 1 h 1 min 1 s");
  });
});
