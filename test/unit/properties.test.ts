/**
 * Properties of the pure functions every message passes through, on arbitrary and hostile strings:
 * id codecs only ever throw typed errors and round-trip, SMS segment counts are consistent with their
 * definition, and nothing XML cannot carry survives xmlSafe. (IRC's splitter and formatter have their own in
 * adapters/irc/properties.test.ts.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { echoCodec } from "../../adapters/echo/codec.js";
import { emailCodec } from "../../adapters/email/codec.js";
import { subjectFor } from "../../adapters/email/compose.js";
import { createSmsCodec } from "../../adapters/sms/codec.js";
import {
  GSM7_PER_PART,
  GSM7_SINGLE,
  segmentInfo,
  UCS2_PER_PART,
  UCS2_SINGLE,
} from "../../adapters/sms/segments.js";
import type { IdCodec } from "../../src/adapter.js";
import { parseForm } from "../../src/http/server.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { xmlSafe } from "../../src/xmpp/stanzas.js";

/** Strings rich in what breaks protocols: controls, line breaks, escapes, surrogates, JID separators. */
const hostile = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        ..."\r\n\0\x01\x1b\t\x7f\u0085\u2028\ufffe\uffff\ud800\udc00 @/\\%+&=#:;<>\"'".split(""),
      ),
      fc.constantFrom("\\20", "\\40", "\\5c", "+1202", "00", "tel:", "😀", "é"),
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.string({ maxLength: 20 }),
    ),
    { maxLength: 40 },
  )
  .map((parts) => parts.join(""));

function throwsOnlyTyped(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return undefined;
  }
}

const XML_ILLEGAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/u; // eslint-disable-line no-control-regex

describe.each<[string, IdCodec]>([
  ["sms", createSmsCodec()],
  ["sms (national numbers in the US)", createSmsCodec({ defaultCountry: "US" })],
  ["echo", echoCodec],
  ["email", emailCodec],
])("%s id codec", (_name, codec) => {
  it("throws only typed errors, and what it accepts round-trips", () => {
    fc.assert(
      fc.property(hostile, (input) => {
        for (const parse of [(s: string) => codec.decode(s), (s: string) => codec.fromPrompt(s)]) {
          const id = throwsOnlyTyped(() => parse(input));
          if (typeof id !== "string") continue;
          const local = codec.encode(id);
          expect(codec.decode(local)).toBe(id);
          // What becomes a JID localpart carries no character a JID or XML cannot hold.
          expect(local).not.toMatch(/[@/\s"&'<>:]/u);
          expect(local).not.toMatch(XML_ILLEGAL);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("mail subjects", () => {
  it("never carry a line break or a control character into the Subject header", () => {
    fc.assert(
      fc.property(
        fc.option(hostile, { nil: undefined }),
        hostile,
        fc.option(hostile, { nil: undefined }),
        (subject, body, thread) => {
          const line = subjectFor(subject, body, thread);
          // eslint-disable-next-line no-control-regex
          expect(line).not.toMatch(/[\r\n\u0000-\u001f\u007f\u0085\u2028\u2029]/u);
          expect(line.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("SMS numbers", () => {
  const codec = createSmsCodec({ defaultCountry: "US" });
  it("reads any way of writing a valid US number as the same E.164", () => {
    const line = fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0"));
    const style = fc.constantFrom(
      (l: string) => `+1 202 555 ${l}`,
      (l: string) => `(202) 555-${l}`,
      (l: string) => `202.555.${l}`,
      (l: string) => `001202555${l}`,
      (l: string) => `tel:+1-202-555-${l}`,
    );
    fc.assert(
      fc.property(line, style, (l, write) => {
        expect(codec.fromPrompt(write(l))).toBe(`+1202555${l}`);
      }),
    );
  });
});

describe("SMS segments", () => {
  const gsm = fc.string({
    unit: fc.constantFrom(..."abcXYZ019 .,!?@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩ".split("")),
    maxLength: 700,
  });
  const any = fc.string({ unit: "grapheme", maxLength: 400 });

  it("counts a GSM-7 text as 1 segment up to 160 septets, then ceil(n / 153)", () => {
    fc.assert(
      fc.property(gsm, (body) => {
        const info = segmentInfo(body);
        expect(info.encoding).toBe("GSM-7");
        const n = info.units;
        expect(info.segments).toBe(n === 0 ? 0 : n <= GSM7_SINGLE ? 1 : Math.ceil(n / GSM7_PER_PART));
      }),
    );
  });

  it("never counts fewer segments for a longer text, and never fewer than UCS-2 units demand", () => {
    fc.assert(
      fc.property(any, any, (a, b) => {
        const whole = segmentInfo(a + b);
        expect(whole.segments).toBeGreaterThanOrEqual(segmentInfo(a).segments);
        if (whole.encoding === "UCS-2" && whole.units > UCS2_SINGLE)
          expect(whole.segments).toBeGreaterThanOrEqual(Math.ceil(whole.units / UCS2_PER_PART));
      }),
    );
  });
});

describe("xmlSafe", () => {
  it("leaves nothing XML 1.0 cannot carry, keeps everything it can, and is idempotent", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 200 }), hostile, (a, b) => {
        const text = a + b;
        const safe = xmlSafe(text);
        expect(safe).not.toMatch(XML_ILLEGAL);
        expect(safe).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u);
        expect(xmlSafe(safe)).toBe(safe);
        // Only removals: every kept character appears in order in the input.
        let at = 0;
        for (const ch of safe) {
          at = text.indexOf(ch, at);
          expect(at).toBeGreaterThanOrEqual(0);
          at += ch.length;
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("webhook form parsing", () => {
  it("reads back any parameters it is given, or refuses with an Error", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), hostile, { maxKeys: 20 }),
        (params) => {
          const body = new URLSearchParams(params).toString();
          const parsed = parseForm(body);
          for (const [key, value] of Object.entries(params)) {
            // URLSearchParams itself turns lone surrogates into U+FFFD when encoding.
            expect(parsed[key]).toBe(new URLSearchParams({ v: value }).get("v"));
          }
        },
      ),
    );
  });
});
