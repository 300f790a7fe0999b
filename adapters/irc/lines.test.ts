/** Server bytes → whole lines: a burst of normal lines in one big chunk, lines cut across chunks, over-long lines. */
import { describe, expect, it } from "vitest";
import { LineReader, MAX_SERVER_LINE_BYTES } from "./lines.js";

const text = (lines: Buffer[]) => lines.map((l) => l.toString("utf8"));

describe("LineReader", () => {
  it("reads a 200 KiB chunk of normal lines whole, dropping none", () => {
    const dropped: number[] = [];
    const reader = new LineReader((b) => dropped.push(b));
    const sent = Array.from(
      { length: 4000 },
      (_, i) => `@time=2026-01-01T00:00:00.000Z :bob!u@h PRIVMSG #busy :line ${i}`,
    );
    const chunk = Buffer.from(sent.map((l) => `${l}\r\n`).join(""));
    expect(chunk.length).toBeGreaterThan(200 * 1024);
    expect(text(reader.push(chunk))).toEqual(sent);
    expect(dropped).toEqual([]);
  });

  it("joins a line cut across chunks, at any byte, also inside CR LF and a UTF-8 character", () => {
    const sent = [":a PRIVMSG #c :héllo", ":a PRIVMSG #c :wörld", ":a PING :x"];
    const bytes = Buffer.from(sent.map((l) => `${l}\r\n`).join(""));
    for (let size = 1; size <= 7; size++) {
      const reader = new LineReader(() => expect.fail("nothing is over-long"));
      const got: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...reader.push(bytes.subarray(i, i + size)));
      expect(text(got)).toEqual(sent);
    }
  });

  it("accepts a line of 512 bytes plus the most tags IRCv3 allows", () => {
    const reader = new LineReader(() => expect.fail("not over-long"));
    const longest = "x".repeat(MAX_SERVER_LINE_BYTES);
    expect(text(reader.push(Buffer.from(`${longest}\r\n:a PING :y\r\n`)))).toEqual([longest, ":a PING :y"]);
  });

  it("drops a single over-long line and reads the lines after it", () => {
    const dropped: number[] = [];
    const reader = new LineReader((b) => dropped.push(b));
    const got = [
      ...reader.push(Buffer.from(":a PRIVMSG #c :before\r\n" + "x".repeat(100_000))),
      ...reader.push(Buffer.from("y".repeat(100_000))),
      ...reader.push(Buffer.from("z\r\n:a PRIVMSG #c :after\r\n")),
    ];
    expect(text(got)).toEqual([":a PRIVMSG #c :before", ":a PRIVMSG #c :after"]);
    expect(dropped).toHaveLength(1);
  });

  it("drops an over-long line that arrives whole in one chunk", () => {
    const dropped: number[] = [];
    const reader = new LineReader((b) => dropped.push(b));
    const got = reader.push(Buffer.from(`${"x".repeat(MAX_SERVER_LINE_BYTES + 1)}\r\nok\r\n`));
    expect(text(got)).toEqual(["ok"]);
    expect(dropped).toHaveLength(1);
  });
});
