/* eslint-disable no-control-regex -- these properties are about control characters in IRC text */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/xmpp/errors.js";
import {
  createIrcCodec,
  formatIrcLocalpart,
  parseIrcLocalpart,
  parseIrcPrompt,
  type IrcCodecOptions,
  type IrcTarget,
} from "./codec.js";
import { mircToText, toIrc } from "./format.js";
import { toIrcLines } from "./split.js";

/** Strings rich in what breaks IRC lines: line breaks, controls, formatting codes, surrogates, markers. */
const special = fc.constantFrom(
  ..."\r\n\0\x01\x02\x03\x04\x07\x0f\x11\x16\x1d\x1e\x1f\t\v\f\x7f\u0085\u2028\u2029 *_~`%@#:\\,".split(""),
  "\uD800",
  "\uDC00",
  "😀",
  "é",
  "\r\n",
  "/me ",
  "12",
  "ff00aa",
);
const nasty = fc
  .array(fc.oneof(special, fc.string({ unit: "binary", maxLength: 8 }), fc.string({ maxLength: 40 })), {
    maxLength: 120,
  })
  .map((parts) => parts.join(""));

/** Long lines too, so that cuts happen at the very edge of the byte limit. */
const long = fc.oneof(
  nasty,
  fc.string({ unit: "binary", minLength: 200, maxLength: 1500 }),
  fc
    .tuple(fc.constantFrom("é", "😀", "a ", "x", "ab😀", "\x02"), fc.integer({ min: 100, max: 800 }), nasty)
    .map(([unit, n, tail]) => unit.repeat(n) + tail),
);

const utf8 = (s: string): number => Buffer.byteLength(s, "utf8");
const isLoneSurrogate = (c: string): boolean => /^[\uD800-\uDFFF]$/.test(c);
/** The printable characters, in order: what a reader must still see after the split. */
const printable = (s: string): string =>
  [...s]
    .filter((c) => !/[\s\p{Cc}]/u.test(c))
    .map((c) => (isLoneSurrogate(c) ? "\uFFFD" : c))
    .join("");

function onlyGatewayErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
  }
}

describe("toIrcLines properties", () => {
  const opts = fc.record({
    target: fc.constantFrom("#c", "#chan", "alice", `#${"x".repeat(49)}`),
    prefixBytes: fc.integer({ min: 1, max: 200 }),
  });

  it("never makes a line over 512 bytes with the prefix, nor one holding CR, LF or NUL", () => {
    fc.assert(
      fc.property(long, opts, (body, o) => {
        let lines: string[];
        try {
          lines = toIrcLines(body, { ...o, maxLines: Number.MAX_SAFE_INTEGER });
        } catch (err) {
          expect(err).toBeInstanceOf(GatewayError);
          return;
        }
        for (const line of lines) {
          expect(utf8(`:${"p".repeat(o.prefixBytes)} PRIVMSG ${o.target} :${line}\r\n`)).toBeLessThanOrEqual(
            512,
          );
          expect(line).not.toMatch(/[\r\n\0]/);
          expect(line.trim()).not.toBe("");
          expect(
            line.startsWith("\x01") ? line.startsWith("\x01ACTION ") && line.endsWith("\x01") : true,
          ).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it("keeps every printable character, in order", () => {
    const body = long.filter((s) => !s.startsWith("\x01"));
    fc.assert(
      fc.property(body, opts, (text, o) => {
        let lines: string[];
        try {
          lines = toIrcLines(text, { ...o, maxLines: Number.MAX_SAFE_INTEGER });
        } catch (err) {
          expect((err as GatewayError).condition).toBe("not-acceptable");
          expect(printable(text)).toBe("");
          return;
        }
        // Only a leading \x01 (control, so not printable) may be taken from a line.
        expect(printable(lines.join(" "))).toBe(printable(text));
      }),
      { numRuns: 400 },
    );
  });

  it("sends a /me as ACTION lines that keep the text", () => {
    fc.assert(
      fc.property(long, (text) => {
        let lines: string[];
        try {
          lines = toIrcLines(toIrc(`/me ${text}`), { target: "#c", prefixBytes: 60, maxLines: 1e9 });
        } catch (err) {
          expect((err as GatewayError).condition).toBe("not-acceptable");
          return;
        }
        for (const line of lines) expect(line).toMatch(/^\x01ACTION [^\x01\r\n\0]*\x01$/);
        const inner = lines.map((l) => l.slice(8, -1)).join(" ");
        expect(printable(inner)).toBe(printable(text));
      }),
      { numRuns: 300 },
    );
  });
});

describe("address properties", () => {
  const host = fc
    .array(fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/), { minLength: 1, maxLength: 4 })
    .map((labels) => [...labels, "net"].join("."));
  const nick = fc.stringMatching(/^[a-z[\]\\`_^{|}][a-z0-9[\]\\`_^{|}-]{0,29}$/);
  const channel = fc
    .tuple(fc.constantFrom(..."#&+!"), fc.string({ unit: "binary", maxLength: 30 }))
    .map(([prefix, rest]) => (prefix + rest).toLowerCase())
    .filter((c) => utf8(c) <= 50 && !/[\s,\p{Cc}]/u.test(c) && c === c.toLowerCase());
  const target: fc.Arbitrary<IrcTarget> = fc.oneof(
    fc.tuple(channel, host).map(([channel, server]) => ({ kind: "channel" as const, channel, server })),
    fc.tuple(nick, host).map(([nick, server]) => ({ kind: "nick" as const, nick, server })),
    host.map((server) => ({ kind: "server" as const, server })),
  );

  it("reads back every address it writes, and writes no character a localpart cannot hold", () => {
    fc.assert(
      fc.property(target, (t) => {
        const local = formatIrcLocalpart(t, {});
        expect(local).not.toMatch(/[ "&'/:<>@]/);
        expect(parseIrcLocalpart(local, {})).toEqual(t);
        expect(formatIrcLocalpart(parseIrcLocalpart(local, {}), {})).toBe(local);
        const codec = createIrcCodec({});
        expect(codec.encode(codec.decode(local))).toBe(local);
      }),
      { numRuns: 500 },
    );
  });

  it("reads back every address it writes with a fixed server", () => {
    fc.assert(
      fc.property(target, (t) => {
        const opts: IrcCodecOptions = { fixedServer: t.server };
        const local = formatIrcLocalpart(t, opts);
        expect(parseIrcLocalpart(local, opts)).toEqual(t);
      }),
      { numRuns: 300 },
    );
  });

  it("throws nothing but GatewayError on any input", () => {
    const codec = createIrcCodec({});
    const fixedCodec = createIrcCodec({ fixedServer: "irc.example.net" });
    fc.assert(
      fc.property(nasty, (s) => {
        for (const opts of [{}, { fixedServer: "irc.example.net" }]) {
          onlyGatewayErrors(() => parseIrcLocalpart(s, opts));
          onlyGatewayErrors(() => parseIrcPrompt(s, opts));
        }
        for (const c of [codec, fixedCodec]) {
          onlyGatewayErrors(() => c.decode(s));
          onlyGatewayErrors(() => c.encode(s));
          onlyGatewayErrors(() => c.fromPrompt(`ircs://${s}`));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("mIRC to text properties", () => {
  it("never throws and leaves no control character", () => {
    fc.assert(
      fc.property(nasty, (s) => {
        expect(mircToText(s)).not.toMatch(/[\u0000-\u001f\u007f]/);
      }),
      { numRuns: 500 },
    );
  });

  it("keeps the text: only styling markers are added", () => {
    const noColours = nasty.map((s) => s.replace(/[\x03\x04]/g, ""));
    const bare = (s: string): string => s.replace(/[*_~`]/g, "");
    fc.assert(
      fc.property(noColours, (s) => {
        const expected = s.replace(/[\t\r\n]/g, " ").replace(/[\u0000-\u001f\u007f]/g, "");
        expect(bare(mircToText(s))).toBe(bare(expected));
      }),
      { numRuns: 500 },
    );
  });
});
