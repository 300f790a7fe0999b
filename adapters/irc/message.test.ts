/** The line layer's parser and formatter: IRCv3 tags, sources, middle and trailing parameters. */
import { describe, expect, it } from "vitest";
import { formatLine, parseLine, parseTags } from "./message.js";

describe("parseTags", () => {
  it.each([
    ["time=2026-01-02T03:04:05.678Z;msgid=abc", { time: "2026-01-02T03:04:05.678Z", msgid: "abc" }],
    ["inspircd.org/echo", { "inspircd.org/echo": "" }],
    ["+draft/reply=x;;a=", { "+draft/reply": "x", a: "" }],
    ["k=a\\:b\\sc\\\\d\\r\\n", { k: "a;b c\\d\r\n" }],
    ["k=trailing\\", { k: "trailing" }],
  ])("%s", (raw, tags) => {
    expect(parseTags(raw)).toEqual(tags);
  });
});

describe("parseLine", () => {
  it.each([
    [
      "@time=2026-01-02T03:04:05Z;msgid=m1 :bob!u@h PRIVMSG #chat :hello there",
      {
        tags: { time: "2026-01-02T03:04:05Z", msgid: "m1" },
        prefix: "bob!u@h",
        nick: "bob",
        command: "PRIVMSG",
        params: ["#chat", "hello there"],
      },
    ],
    [
      ":irc.example.net 353 alice = #chat :alice @bob +carol",
      {
        tags: {},
        prefix: "irc.example.net",
        nick: "",
        command: "353",
        params: ["alice", "=", "#chat", "alice @bob +carol"],
      },
    ],
    ["PING :irc.example.net", { prefix: "", nick: "", command: "PING", params: ["irc.example.net"] }],
    [":bob!u@h AWAY", { nick: "bob", command: "AWAY", params: [] }],
    [":bob!u@h  mode   #chat +o  carol", { command: "MODE", params: ["#chat", "+o", "carol"] }],
    [":bob!u@h PRIVMSG #chat :", { params: ["#chat", ""] }],
    [":bob!u@h PRIVMSG #chat ::-) colon", { params: ["#chat", ":-) colon"] }],
    [":bob PRIVMSG alice :no user or host", { nick: "bob" }],
    [":bob@host NOTICE alice :x", { nick: "bob" }],
  ])("%j", (line, parsed) => {
    expect(parseLine(line)).toMatchObject(parsed);
  });

  it("finds no command in an empty line or one with only a source", () => {
    expect(parseLine("")).toBeNull();
    expect(parseLine(":irc.example.net")).toBeNull();
    expect(parseLine("@a=b")).toBeNull();
  });
});

describe("formatLine", () => {
  it.each([
    [["PRIVMSG", ["#chat", "hello there"]], "PRIVMSG #chat :hello there"],
    [["PRIVMSG", ["#chat", "word"]], "PRIVMSG #chat word"],
    [["PRIVMSG", ["#chat", ":-)"]], "PRIVMSG #chat ::-)"],
    [["TOPIC", ["#chat", ""]], "TOPIC #chat :"],
    [["JOIN", ["#chat"]], "JOIN #chat"],
    [["CAP", ["END"]], "CAP END"],
  ] as const)("%j", ([command, params], line) => {
    expect(formatLine(command, params)).toBe(line);
    expect(parseLine(line)?.params).toEqual(params);
  });
});
