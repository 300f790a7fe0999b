import { refusal } from "../../test/support/refusal.js";
import { describe, expect, it } from "vitest";
import {
  charsetDecoder,
  decodeIrcLines,
  decodeIrcText,
  isSupportedCharset,
  IRC_LINE_BYTES,
  MAX_LINES_PER_MESSAGE,
  textBudget,
  toIrcLines,
} from "./split.js";

// ":" + 10-byte prefix + " PRIVMSG " + "#c" + " :" + CRLF = 26 bytes, so 20 bytes of text per line.
const small = { target: "#c", prefixBytes: 10, maxLineBytes: 46 };
const real = { target: "#chan", prefixBytes: 40 };

describe("XMPP body to PRIVMSG lines", () => {
  it("leaves room for the prefix the server adds (RFC 1459 §2.3)", () => {
    expect(textBudget(small)).toBe(20);
    expect(textBudget(real)).toBe(IRC_LINE_BYTES - (1 + 40 + 9 + 5 + 2 + 2));
  });

  it.each<[string, string[]]>([
    ["hello", ["hello"]],
    ["a\nb\r\nc\rd\u2028e\u2029f\u0085g", ["a", "b", "c", "d", "e", "f", "g"]],
    // Blank lines are dropped: IRC refuses an empty PRIVMSG and each line costs flood budget.
    ["a\n\n \t \nb", ["a", "b"]],
    // Cut at the last space when it is near the end; the space itself is the split point.
    ["aaaa bbbb cccc dddd eeee", ["aaaa bbbb cccc dddd", "eeee"]],
    ["aaaa bbbb cccc ddddd eeee", ["aaaa bbbb cccc ddddd", "eeee"]],
    // A space far back is not used: the line is cut where it is full.
    [`ab ${"x".repeat(30)}`, [`ab ${"x".repeat(17)}`, "x".repeat(13)]],
    // Multi-byte characters are never cut: é is 2 bytes, 😀 is 4 (a surrogate pair in JS).
    ["é".repeat(15), ["é".repeat(10), "é".repeat(5)]],
    ["😀".repeat(6), ["😀".repeat(5), "😀"]],
    ["xyz😀😀😀😀😀", ["xyz😀😀😀😀", "😀"]],
    // Control characters other than IRC formatting go; tabs become spaces.
    ["a\0b\x07c\td", ["abc d"]],
    ["\x02bold\x02 \x1ditalic\x1d", ["\x02bold\x02 \x1ditalic\x1d"]],
    // A lone surrogate (broken UTF-16) becomes U+FFFD rather than invalid UTF-8.
    ["a\uD800b", ["a\uFFFDb"]],
    // Nobody smuggles a CTCP query into a channel.
    ["\x01VERSION\x01", ["VERSION\x01"]],
    ["hi\n\x01PING 1\x01", ["hi", "PING 1\x01"]],
  ])("%j → %j", (body, lines) => {
    expect(toIrcLines(body, small)).toEqual(lines);
  });

  it("makes every line of a /me an ACTION, within the line limit", () => {
    expect(toIrcLines("\x01ACTION waves\nand smiles\x01", real)).toEqual([
      "\x01ACTION waves\x01",
      "\x01ACTION and smiles\x01",
    ]);
    const lines = toIrcLines(`\x01ACTION ${"word ".repeat(200)}\x01`, real);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      // eslint-disable-next-line no-control-regex
      expect(line).toMatch(/^\x01ACTION [^\x01]+\x01$/);
      expect(Buffer.byteLength(`:${"p".repeat(40)} PRIVMSG #chan :${line}\r\n`)).toBeLessThanOrEqual(512);
    }
  });

  it("fills lines of real size up to 512 bytes and no further", () => {
    // 453 bytes of room: 226 two-byte characters fit, the 227th would be cut in half.
    const lines = toIrcLines("ü".repeat(1000), real);
    expect(lines.map((l) => Buffer.byteLength(l))).toEqual([452, 452, 452, 452, 192]);
  });

  it("refuses a message longer than MAX_LINES_PER_MESSAGE lines, saying how long it is", () => {
    const body = Array.from({ length: MAX_LINES_PER_MESSAGE + 1 }, (_, i) => `line ${i}`).join("\n");
    const err = refusal(() => toIrcLines(body, small));
    expect(err.condition).toBe("not-acceptable");
    expect(err.message).toContain(`would be 21 IRC lines; the limit is ${MAX_LINES_PER_MESSAGE}`);
    expect(toIrcLines(body, { ...small, maxLines: 21 })).toHaveLength(21);
  });

  it("refuses a message with nothing to send, and a target too long for any text", () => {
    expect(refusal(() => toIrcLines("\n \n\0", small)).message).toContain("no text IRC can carry");
    expect(refusal(() => toIrcLines("hi", { ...small, maxLineBytes: 29 })).message).toContain("no room");
  });
});

describe("IRC bytes to text", () => {
  it.each<[number[], string, string]>([
    [[0x68, 0xc3, 0xa9], "windows-1252", "hé"],
    [[0x68, 0xe9], "windows-1252", "hé"],
    [[0x68, 0xe9], "latin1", "hé"],
    [[0x80], "windows-1252", "€"],
    [[0x93, 0x68, 0x69, 0x94, 0x81], "cp1252", "\u201chi\u201d\u0081"],
    [[0xa4], "iso-8859-15", "€"],
    [[0xf6, 0xd2], "koi8-r", "Жр"],
    [[0xef, 0xbb, 0xbf, 0x41], "windows-1252", "A"],
  ])("%j in fallback %s → %j", (bytes, charset, text) => {
    expect(decodeIrcText(Buffer.from(bytes), charset)).toBe(text);
  });

  it("knows WHATWG charset labels and refuses others when configured", () => {
    expect(isSupportedCharset("cp1252")).toBe(true);
    expect(isSupportedCharset("iso-8859-2")).toBe(true);
    expect(isSupportedCharset("klingon")).toBe(false);
    expect(refusal(() => charsetDecoder("klingon")).message).toContain('Unknown character set "klingon"');
    // Even valid UTF-8 input does not hide a bad setting.
    expect(refusal(() => decodeIrcText(Buffer.from("ok"), "klingon")).condition).toBe("not-acceptable");
  });
});

describe("decodeIrcLines", () => {
  it.each([
    ["all UTF-8", Buffer.from("caf\u00e9\r\nna\u00efve\r\n"), "café\r\nnaïve\r\n"],
    [
      "one latin-1 line among UTF-8 ones",
      Buffer.concat([Buffer.from("caf\u00e9\r\n"), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0d, 0x0a])]),
      "café\r\ncafé\r\n",
    ],
    ["an unfinished last line", Buffer.from([0x6f, 0x6b, 0x0a, 0xe9]), "ok\né"],
    ["nothing", Buffer.alloc(0), ""],
  ])("%s", (_what, bytes, text) => {
    expect(decodeIrcLines(bytes, "windows-1252")).toBe(text);
  });
});
