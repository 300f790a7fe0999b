import { refusal } from "../../test/support/refusal.js";
import { describe, expect, it } from "vitest";
import { MAX_SEGMENTS_DEFAULT, checkSegments, segmentInfo } from "./segments.js";

const a = (n: number) => "a".repeat(n);
const zhe = (n: number) => "ж".repeat(n); // U+0436: not in GSM-7, one UTF-16 unit
const euro = (n: number) => "€".repeat(n); // GSM-7 extension table: 2 septets
const grin = "😀"; // U+1F600: a surrogate pair, 2 UTF-16 units

describe("segmentInfo", () => {
  type Row = [
    label: string,
    body: string,
    encoding: string,
    units: number,
    segments: number,
    perSegment: number,
  ];
  it.each<Row>([
    ["empty", "", "GSM-7", 0, 0, 160],
    ["1 a", a(1), "GSM-7", 1, 1, 160],
    ["160 a", a(160), "GSM-7", 160, 1, 160],
    ["161 a", a(161), "GSM-7", 161, 2, 153],
    ["306 a", a(306), "GSM-7", 306, 2, 153],
    ["307 a", a(307), "GSM-7", 307, 3, 153],
    ["1530 a", a(1530), "GSM-7", 1530, 10, 153],
    ["1531 a", a(1531), "GSM-7", 1531, 11, 153],
    [
      "accented GSM-7 letters",
      "é è ù ì ò Ç Ø å Δ Ξ ß É ¡ ¿ ä ö ñ ü à Ä Ö Ñ Ü § £ ¥ ¤ @ $ _",
      "GSM-7",
      59,
      1,
      160,
    ],
    ["CR LF", "line\r\nbreak", "GSM-7", 11, 1, 160],
    ["the extension table (2 septets each)", "^{}\\[~]|€\f", "GSM-7", 20, 1, 160],
    ["80 €", euro(80), "GSM-7", 160, 1, 160],
    ["81 €", euro(81), "GSM-7", 162, 2, 153],
    ["159 a + €", a(159) + "€", "GSM-7", 161, 2, 153],
    // 152 + € would end at septet 154: the escape pair moves whole to part 2 (153), leaving 1 for part 3.
    ["152 a + € + 152 a", a(152) + "€" + a(152), "GSM-7", 306, 3, 153],
    ["151 a + € + 152 a", a(151) + "€" + a(152), "GSM-7", 305, 2, 153],
    ["70 ж", zhe(70), "UCS-2", 70, 1, 70],
    ["71 ж", zhe(71), "UCS-2", 71, 2, 67],
    ["134 ж", zhe(134), "UCS-2", 134, 2, 67],
    ["135 ж", zhe(135), "UCS-2", 135, 3, 67],
    ["69 a + ж (one character turns it all UCS-2)", a(69) + "ж", "UCS-2", 70, 1, 70],
    ["160 a + ж", a(160) + "ж", "UCS-2", 161, 3, 67],
    ["€ж (the euro is 1 unit in UCS-2)", "€ж", "UCS-2", 2, 1, 70],
    ["1 emoji", grin, "UCS-2", 2, 1, 70],
    ["35 emoji", grin.repeat(35), "UCS-2", 70, 1, 70],
    ["36 emoji (33 whole pairs per part)", grin.repeat(36), "UCS-2", 72, 2, 67],
    // 66 + a pair would end at unit 68: the pair moves whole to part 2 (67), leaving 1 for part 3.
    ["66 ж + emoji + 66 ж", zhe(66) + grin + zhe(66), "UCS-2", 134, 3, 67],
    ["65 ж + emoji + 66 ж", zhe(65) + grin + zhe(66), "UCS-2", 133, 2, 67],
    ["curly quotes", "‘quoted’", "UCS-2", 8, 1, 70],
  ])("%s", (_label, body, encoding, units, segments, perSegment) => {
    expect(segmentInfo(body)).toEqual({ encoding, units, segments, perSegment });
  });
});

describe("checkSegments", () => {
  it("returns the count when the body is within the limit", () => {
    expect(checkSegments(a(1530), MAX_SEGMENTS_DEFAULT).segments).toBe(10);
    expect(checkSegments("", 1).segments).toBe(0);
  });

  it("refuses a GSM-7 body over the limit and says by how much", () => {
    const err = refusal(() => checkSegments(a(307), 2));
    expect(err.condition).toBe("not-acceptable");
    expect(err.message).toMatch(/^The message needs 3 SMS segments \(GSM-7\); the limit is 2\. /);
    expect(err.message).not.toMatch(/UCS-2/);
  });

  it("names the curly quote that forced UCS-2 and what plain quotes would cost", () => {
    const body = `${a(150)}’${a(20)}`; // 171 units in UCS-2 = 3 segments; 171 septets in GSM-7 = 2
    const err = refusal(() => checkSegments(body, 2));
    expect(err.message).toMatch(/needs 3 SMS segments \(UCS-2\); the limit is 2\./);
    expect(err.message).toContain("’ (U+2019 RIGHT SINGLE QUOTATION MARK: type ' instead)");
    expect(err.message).toMatch(/with plain characters it would need 2 segments\./);
  });

  it.each([
    ["“", 'U+201C LEFT DOUBLE QUOTATION MARK: type " instead'],
    ["”", 'U+201D RIGHT DOUBLE QUOTATION MARK: type " instead'],
    ["–", "U+2013 EN DASH: type - instead"],
    ["…", "U+2026 HORIZONTAL ELLIPSIS: type ... instead"],
    ["\u00a0", "(U+00A0 NO-BREAK SPACE: type a plain space instead)"],
    ["\u200b", "(U+200B ZERO WIDTH SPACE: remove it)"],
  ])("names the look-alike %j", (char, text) => {
    const err = refusal(() => checkSegments(a(100) + char, 1));
    expect(err.message).toContain(text);
  });

  it("lists a few culprits, not all of them", () => {
    const err = refusal(() => checkSegments(`${a(200)}‘’“”–`, 1));
    expect(err.message).toMatch(/U\+2018.*U\+2019.*U\+201C.* and 2 more;/);
  });

  it("does not promise GSM-7 when a character has no look-alike", () => {
    const err = refusal(() => checkSegments(`${zhe(200)}’`, 2));
    expect(err.message).toMatch(/needs 3 SMS segments \(UCS-2\)/);
    expect(err.message).toContain("because of ж (U+0436)");
    expect(err.message).not.toMatch(/plain characters/);
  });

  it("names an emoji by its code point", () => {
    const err = refusal(() => checkSegments(grin.repeat(40), 1));
    expect(err.message).toContain(`${grin} (U+1F600)`);
  });

  it("refuses a body Twilio would reject as longer than 1,600 characters, whatever the segment limit", () => {
    const err = refusal(() => checkSegments(a(1601), 20));
    expect(err.condition).toBe("not-acceptable");
    expect(err.message).toMatch(/1601 characters long; Twilio accepts at most 1600/);
    expect(checkSegments(a(1600), 20).segments).toBe(11);
  });
});

describe("segmentInfo on generated bodies", () => {
  /** Deterministic generator (mulberry32), so a failure can be replayed. */
  function random(seed: number): () => number {
    let state = seed;
    return () => {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const pieces = ["a", "Z", " ", "é", "€", "[", "\n", "ж", "’", grin, "🇫🇷"];

  it("matches a splitter that builds the parts, and never splits a character", () => {
    const next = random(20260601);
    for (let run = 0; run < 500; run += 1) {
      const body = Array.from(
        { length: Math.floor(next() * 400) },
        () => pieces[Math.floor(next() * pieces.length)],
      ).join("");
      const result = segmentInfo(body);
      const gsm = !/[ж’😀🇫]/u.test(body);
      const cost = (char: string) => (gsm ? ("€[".includes(char) ? 2 : 1) : char.length);
      const single = gsm ? 160 : 70;
      const perPart = gsm ? 153 : 67;
      const units = [...body].reduce((sum, char) => sum + cost(char), 0);
      const parts: string[][] = [[]];
      let used = 0;
      for (const char of body) {
        if (units > single && used + cost(char) > perPart) {
          parts.push([]);
          used = 0;
        }
        parts[parts.length - 1]?.push(char);
        used += cost(char);
      }
      expect(parts.map((part) => part.join("")).join("")).toBe(body);
      expect(result.encoding).toBe(gsm ? "GSM-7" : "UCS-2");
      expect(result.units).toBe(units);
      expect(result.segments).toBe(body === "" ? 0 : parts.length);
      expect(result.segments).toBeGreaterThanOrEqual(Math.ceil(units / result.perSegment));
    }
  });
});
