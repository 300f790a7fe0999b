import { refusal } from "../../test/support/refusal.js";
import { describe, expect, it } from "vitest";
import {
  createIrcCodec,
  formatIrcLocalpart,
  parseIrcLocalpart,
  parseIrcPrompt,
  type IrcTarget,
} from "./codec.js";

const multi = {};
const fixed = { fixedServer: "irc.example.net" };

describe("IRC localparts (biboumi addressing)", () => {
  it.each<[string, IrcTarget]>([
    ["#chan%irc.example.net", { kind: "channel", channel: "#chan", server: "irc.example.net" }],
    ["nick%irc.example.net", { kind: "nick", nick: "nick", server: "irc.example.net" }],
    ["irc.example.net", { kind: "server", server: "irc.example.net" }],
    ["localhost", { kind: "server", server: "localhost" }],
    ["#chan%127.0.0.1", { kind: "channel", channel: "#chan", server: "127.0.0.1" }],
    ["&local%irc.example.net", { kind: "channel", channel: "&local", server: "irc.example.net" }],
    ["##off-topic%irc.example.net", { kind: "channel", channel: "##off-topic", server: "irc.example.net" }],
    ["#100%%irc.example.net", { kind: "channel", channel: "#100%", server: "irc.example.net" }],
    ["#a\\40b\\3ac%irc.example.net", { kind: "channel", channel: "#a@b:c", server: "irc.example.net" }],
    ["#café%irc.example.net", { kind: "channel", channel: "#café", server: "irc.example.net" }],
    ["[m]\\5c_%irc.example.net", { kind: "nick", nick: "[m]\\_", server: "irc.example.net" }],
    ["a\\b%irc.example.net", { kind: "nick", nick: "a\\b", server: "irc.example.net" }],
  ])("reads %s", (local, target) => {
    expect(parseIrcLocalpart(local, multi)).toEqual(target);
  });

  it.each<[IrcTarget, string]>([
    [{ kind: "channel", channel: "#a@b:c", server: "irc.example.net" }, "#a\\40b\\3ac%irc.example.net"],
    // XEP-0106 §4.2: a backslash is escaped only where it would start an escape sequence.
    [{ kind: "nick", nick: "a\\b", server: "irc.example.net" }, "a\\b%irc.example.net"],
    [{ kind: "nick", nick: "a\\20", server: "irc.example.net" }, "a\\5c20%irc.example.net"],
    [{ kind: "server", server: "irc.example.net" }, "irc.example.net"],
  ])("writes %j as %s", (target, local) => {
    expect(formatIrcLocalpart(target, multi)).toBe(local);
    expect(parseIrcLocalpart(local, multi)).toEqual(target);
  });

  it("lowercases names, since IRC and DNS ignore case and XMPP servers lowercase localparts", () => {
    expect(parseIrcLocalpart("#Chan%IRC.Example.NET", multi)).toEqual({
      kind: "channel",
      channel: "#chan",
      server: "irc.example.net",
    });
    expect(parseIrcLocalpart("Alice%irc.example.net", multi)).toMatchObject({ nick: "alice" });
  });

  it.each([
    ["#chan", "names no IRC server"],
    ["%irc.example.net", "Nothing comes before the %"],
    ["#a b%irc.example.net", "a space"],
    ["#a,b%irc.example.net", "a comma"],
    ["#a\u0007b%irc.example.net", "\\u0007"],
    [`#${"x".repeat(50)}%irc.example.net`, "at most 50"],
    [`#${"é".repeat(25)}%irc.example.net`, "51 bytes"],
    ["9lives%irc.example.net", "not starting with a digit"],
    ["-dash%irc.example.net", "not a valid IRC nick"],
    ["al.ice%irc.example.net", "not a valid IRC nick"],
    [`${"n".repeat(31)}%irc.example.net`, "at most 30"],
    ["#chan%irc.example.net\\3a6697", "includes a port"],
    ["#chan%irc_example.net", "not an IRC server name"],
    ["#chan%-irc.example.net", "not an IRC server name"],
    ["#chan%1.2.3", "not an IRC server name"],
    ["#chan%256.1.1.1", "not an IRC server name"],
    ["#chan%", "server name is missing"],
  ])("refuses %j, saying %s", (local, words) => {
    const err = refusal(() => parseIrcLocalpart(local, multi));
    expect(err.condition).toBe("jid-malformed");
    expect(err.message).toContain(words);
  });
});

describe("IRC localparts with a fixed server", () => {
  it.each<[string, IrcTarget]>([
    ["#chan", { kind: "channel", channel: "#chan", server: "irc.example.net" }],
    ["nick", { kind: "nick", nick: "nick", server: "irc.example.net" }],
    ["#100%", { kind: "channel", channel: "#100%", server: "irc.example.net" }],
    ["", { kind: "server", server: "irc.example.net" }],
  ])("reads %j", (local, target) => {
    expect(parseIrcLocalpart(local, fixed)).toEqual(target);
    expect(formatIrcLocalpart(target, fixed)).toBe(local);
  });

  it("refuses the multi-server form and other servers", () => {
    expect(refusal(() => parseIrcLocalpart("#chan%irc.example.net", fixed)).message).toContain("drop");
    const other = { kind: "nick", nick: "bob", server: "irc.other.net" } as const;
    expect(refusal(() => formatIrcLocalpart(other, fixed)).condition).toBe("item-not-found");
  });
});

describe("IRC gateway prompts (XEP-0100 §6)", () => {
  it.each([
    ["#chan@irc.example.net", "#chan%irc.example.net"],
    ["#chan%irc.example.net", "#chan%irc.example.net"],
    ["  #Chan@IRC.example.net\n", "#chan%irc.example.net"],
    ["alice@irc.example.net", "alice%irc.example.net"],
    ["irc.example.net", "irc.example.net"],
    ["ircs://irc.example.net/#chan", "#chan%irc.example.net"],
    ["irc://irc.example.net:6697/chan", "#chan%irc.example.net"],
    ["IRC://irc.example.net:6667/%23chan", "#chan%irc.example.net"],
    ["ircs://irc.example.net/alice,isnick", "alice%irc.example.net"],
    ["ircs://irc.example.net/", "irc.example.net"],
    ["#a\\40b%irc.example.net@irc.example.org", "#a@b%irc.example.net"],
  ])("reads %j as %s", (prompt, id) => {
    expect(createIrcCodec(multi).fromPrompt(prompt)).toBe(id);
  });

  it.each([
    ["#chan", "Which IRC server is #chan on?"],
    ["alice", "Which IRC server is alice on?"],
    ["ircs://irc.example.net:7000/#chan", "Port 7000"],
    ["irc.example.net:6697", "includes a port"],
    ["ircs://irc.example.net/%zz", "broken %-escape"],
    ["", "Type an IRC channel"],
  ])("refuses %j, saying %s", (prompt, words) => {
    const err = refusal(() => parseIrcPrompt(prompt, multi));
    expect(err.condition).toBe("jid-malformed");
    expect(err.message).toContain(words);
  });

  it("takes a bare channel or nick with a fixed server and refuses other servers", () => {
    const codec = createIrcCodec(fixed);
    expect(codec.fromPrompt("#chan")).toBe("#chan%irc.example.net");
    expect(codec.fromPrompt("alice")).toBe("alice%irc.example.net");
    expect(codec.fromPrompt("ircs://irc.example.net/#chan")).toBe("#chan%irc.example.net");
    expect(codec.encode(codec.fromPrompt("#chan"))).toBe("#chan");
    expect(refusal(() => codec.fromPrompt("#chan@irc.other.net")).condition).toBe("item-not-found");
    expect(refusal(() => codec.fromPrompt("irc.example.net")).message).toContain("own address");
  });
});

describe("IRC id codec", () => {
  it("decodes a localpart to the foreign id and back", () => {
    const codec = createIrcCodec(multi);
    expect(codec.decode("#chan%irc.example.net")).toBe("#chan%irc.example.net");
    expect(codec.decode("#a\\3ab%irc.example.net")).toBe("#a:b%irc.example.net");
    expect(codec.encode("#a:b%irc.example.net")).toBe("#a\\3ab%irc.example.net");
    expect(codec.encode("irc.example.net")).toBe("irc.example.net");
  });

  it("checks the fixed server at config time", () => {
    expect(refusal(() => createIrcCodec({ fixedServer: "irc.example.net:6697" })).message).toContain("port");
  });

  it("has no contact address for the fixed server itself", () => {
    expect(refusal(() => createIrcCodec(fixed).encode("irc.example.net")).message).toContain("own address");
  });
});
