import { describe, expect, it } from "vitest";
import { ctcpAction, mircToText, parseCtcp, parseOutgoing, styledSpans, toIrc } from "./format.js";

const B = "\x02";
const I = "\x1d";
const S = "\x1e";
const M = "\x11";
const C = "\x03";
const O = "\x0f";

describe("mIRC formatting to XEP-0393 styling", () => {
  it.each([
    ["plain text", "plain text"],
    [`${B}bold${B} text`, "*bold* text"],
    [`say ${I}this${I} now`, "say _this_ now"],
    [`${S}gone${S}`, "~gone~"],
    [`run ${M}ls -l${M}`, "run `ls -l`"],
    [`${B}${I}both${I}${B}`, "*_both_*"],
    // Unterminated spans close at reset or at the end.
    [`${B}bold${O} plain`, "*bold* plain"],
    [`${B}to the end`, "*to the end*"],
    [`${B}a ${I}b${B} c${I}`, "*a _b_* c"],
    // Colours, reverse and underline are dropped with their parameters.
    [`${C}4red${C} ${C}04,12both${C} ${C},5comma`, "red both ,5comma"],
    [`${C}123`, "3"],
    ["\x04ff0000red\x04 \x04ff0000,00ff00pair\x04", "red pair"],
    ["\x16rev\x16 \x1funder\x1f", "rev under"],
    // No marker where XEP-0393 would not see one: spaces inside, mid-word, empty spans.
    [`${B} spaced ${B}`, " spaced "],
    [`${B}trailing ${B}x`, "trailing x"],
    [`word${B}bold${B}`, "wordbold"],
    [`${B}${B}x`, "x"],
    [`${B}a*b${B}`, "a*b"],
    // Nothing is styled inside a preformatted span (XEP-0393 §6.2.5).
    [`${M}code ${B}not bold${B}${M}`, "`code not bold`"],
    // Control characters other than formatting vanish; tabs and line breaks become spaces.
    ["a\x01b\x07c\x00d\x7fe", "abcde"],
    ["tab\there\r\nnext", "tab here  next"],
  ])("%j → %j", (irc, text) => {
    expect(mircToText(irc)).toBe(text);
  });

  it.each([
    // Bold after a literal "_" (not an opening directive) would not be recognised.
    [`*x _${B}y${B}`, "*x _y"],
    // "*x *y*" would make the user's literal "*" open a span closed by ours: no styling then.
    [`*x ${B}y${B}`, "*x y"],
    [`2*3 ${B}six${B}`, "2*3 *six*"],
  ])("adds no marker that pairs with a literal one in the IRC text: %j → %j", (irc, text) => {
    expect(mircToText(irc)).toBe(text);
  });
});

describe("XEP-0393 span finder used as the last guard", () => {
  it.each<[string, [string, number, number][]]>([
    ["*bold*", [["*", 0, 5]]],
    ["not*bold*", []],
    ["* not*", []],
    [
      "*_both_*",
      [
        ["*", 0, 7],
        ["_", 1, 6],
      ],
    ],
    ["*a*_b_", [["*", 0, 2]]],
    ["`*x*`", [["`", 0, 4]]],
  ])("%j", (line, spans) => {
    expect(styledSpans(line)).toEqual(spans);
  });
});

describe("CTCP", () => {
  it.each([
    ["\x01ACTION waves\x01", { command: "ACTION", params: "waves", known: true }],
    ["\x01VERSION\x01", { command: "VERSION", params: "", known: true }],
    ["\x01PING 1700000000\x01", { command: "PING", params: "1700000000", known: true }],
    ["\x01time\x01", { command: "TIME", params: "", known: true }],
    ["\x01ACTION no final marker", { command: "ACTION", params: "no final marker", known: true }],
    ["\x01XYZZY a b\x01", { command: "XYZZY", params: "a b", known: false }],
  ])("recognises %j", (line, ctcp) => {
    expect(parseCtcp(line)).toEqual(ctcp);
  });

  it.each(["hello", "\x01", "\x01\x01", "\x01 space\x01", " \x01ACTION x\x01"])("%j is not CTCP", (line) => {
    expect(parseCtcp(line)).toBeNull();
  });

  it("builds an ACTION that cannot end early or break the line", () => {
    expect(ctcpAction("waves")).toBe("\x01ACTION waves\x01");
    expect(ctcpAction("a\x01b\r\nc\0")).toBe("\x01ACTION abc\x01");
  });
});

describe("XMPP body to IRC", () => {
  it.each([
    ["/me waves", { action: true, text: "waves" }],
    ["/me", { action: false, text: "/me" }],
    ["/meh", { action: false, text: "/meh" }],
    [" /me waves", { action: false, text: " /me waves" }],
  ])("%j", (body, parsed) => {
    expect(parseOutgoing(body)).toEqual(parsed);
  });

  it("keeps XEP-0393 styling as typed and turns /me into an ACTION", () => {
    expect(toIrc("*really* _now_")).toBe("*really* _now_");
    expect(toIrc("/me waves *hard*")).toBe("\x01ACTION waves *hard*\x01");
  });
});
