/**
 * IRC text ↔ XMPP body.
 *
 * Inbound, mIRC formatting codes (ircdocs "Formatting") become XEP-0393 Message Styling where a style
 * exists: bold `*…*`, italic `_…_`, strikethrough `~…~`, monospace `` `…` ``. Colours, reverse and underline
 * have no XEP-0393 form and are dropped (XEP-0393 has no underline; Gajim removed its own). Markers are
 * written only where XEP-0393 §6.2 recognises them, and the result is checked with a span parser, so a
 * marker can never pair with a character of the IRC text and style text it was not meant for.
 *
 * Outbound, XEP-0393 text goes as is (IRC users read `*bold*` fine); `/me ` (XEP-0245) becomes a CTCP ACTION.
 */

const BOLD = "\x02";
const COLOR = "\x03";
const HEX_COLOR = "\x04";
const RESET = "\x0f";
const MONOSPACE = "\x11";
const REVERSE = "\x16";
const ITALIC = "\x1d";
const STRIKE = "\x1e";
const UNDERLINE = "\x1f";
const CTCP = "\x01";

/** XEP-0393 §6.2 span directives for the IRC toggles that have one, outermost first. */
const DIRECTIVE: Readonly<Record<string, string>> = {
  [BOLD]: "*",
  [ITALIC]: "_",
  [STRIKE]: "~",
  [MONOSPACE]: "`",
};
const ORDER = ["*", "_", "~", "`"];

/** CTCP queries and replies a gateway may meet (ircdocs "CTCP"; DCC is recognised so it can be refused). */
export const CTCP_COMMANDS = [
  "ACTION",
  "CLIENTINFO",
  "DCC",
  "FINGER",
  "PING",
  "SOURCE",
  "TIME",
  "USERINFO",
  "VERSION",
] as const;

interface Styled {
  ch: string;
  /** Directives active on this character, in ORDER. */
  styles: string[];
}

/** Reads mIRC codes; returns each visible character with the XEP-0393 styles it carries. */
function readFormatting(text: string): Styled[] {
  const out: Styled[] = [];
  const on = new Set<string>();
  const cps = [...text];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i] ?? "";
    const directive = DIRECTIVE[c];
    if (directive !== undefined) {
      if (on.has(directive)) on.delete(directive);
      else on.add(directive);
    } else if (c === RESET) on.clear();
    else if (c === COLOR) {
      // \x03[fg[,bg]]: up to two digits each; the comma belongs to the code only when a digit follows.
      // Without a foreground there is no background: "\x03,5" shows ",5" (ircdocs "Colors").
      const fg = countMatching(cps, i + 1, /\d/, 2);
      i += fg;
      if (fg > 0 && cps[i + 1] === "," && /\d/.test(cps[i + 2] ?? ""))
        i += 1 + countMatching(cps, i + 2, /\d/, 2);
    } else if (c === HEX_COLOR) {
      // \x04[RRGGBB[,RRGGBB]]: exactly six hex digits each.
      if (countMatching(cps, i + 1, /[0-9a-f]/i, 6) === 6) {
        i += 6;
        if (cps[i + 1] === "," && countMatching(cps, i + 2, /[0-9a-f]/i, 6) === 6) i += 7;
      }
    } else if (c === "\t" || c === "\r" || c === "\n") push(" ");
    // Underline, reverse, CTCP markers, other C0 controls and DEL have no text form.
    // eslint-disable-next-line no-control-regex
    else if (!/[\u0000-\u001f\u007f]/.test(c)) push(c);
  }
  return out;

  function push(ch: string): void {
    // XEP-0393 §6.2.5: nothing is styled inside a preformatted span.
    out.push({ ch, styles: on.has("`") ? ["`"] : ORDER.filter((d) => on.has(d)) });
  }
}

function countMatching(cps: string[], from: number, re: RegExp, max: number): number {
  let n = 0;
  while (n < max && re.test(cps[from + n] ?? "")) n++;
  return n;
}

type Token = { text: string } | { span: number; open: boolean };
interface Span {
  directive: string;
  keep: boolean;
}

/** Turns per-character styles into properly nested open/close tokens (a stack, reopened where crossed). */
function nest(chars: Styled[]): { tokens: Token[]; spans: Span[] } {
  const tokens: Token[] = [];
  const spans: Span[] = [];
  const stack: { directive: string; span: number }[] = [];
  for (const { ch, styles } of [...chars, { ch: "", styles: [] }]) {
    // Close down to the innermost span that every outer one still applies to, then open what is new.
    const keep = stack.findIndex((s) => !styles.includes(s.directive));
    while (keep >= 0 && stack.length > keep) tokens.push({ span: stack.pop()?.span ?? -1, open: false });
    for (const directive of styles.filter((d) => !stack.some((s) => s.directive === d))) {
      spans.push({ directive, keep: true });
      stack.push({ directive, span: spans.length - 1 });
      tokens.push({ span: spans.length - 1, open: true });
    }
    if (ch !== "") tokens.push({ text: ch });
  }
  return { tokens, spans };
}

/** A kept span as placed in the rendered text: [directive, open index, close index, span number]. */
type Placed = [string, number, number, number];

function render(tokens: Token[], spans: Span[]): { text: string; placed: Placed[] } {
  let text = "";
  const opens = new Map<number, number>();
  const placed: Placed[] = [];
  for (const t of tokens) {
    const span = "text" in t ? undefined : spans[t.span];
    if ("text" in t) text += t.text;
    else if (span?.keep) {
      if (t.open) opens.set(t.span, text.length);
      else placed.push([span.directive, opens.get(t.span) ?? -1, text.length, t.span]);
      text += span.directive;
    }
  }
  return { text, placed };
}

const isSpace = (c: string | undefined): boolean => c !== undefined && /\s/u.test(c);

/**
 * XEP-0393 §6.2 span matching, lazily from the left: an opening directive at the start of the line, after
 * whitespace or right after a different opening directive, not followed by whitespace; the first later
 * same directive not preceded by whitespace closes it; spans are not empty; nothing nests in `.
 */
export function styledSpans(line: string): [string, number, number][] {
  const found: [string, number, number][] = [];
  const walk = (from: number, to: number, parent: string): void => {
    for (let i = from; i < to; i++) {
      const c = line.charAt(i);
      if (!ORDER.includes(c) || isSpace(line[i + 1])) continue;
      if (!(i === 0 || isSpace(line[i - 1]) || (i === from && from > 0 && parent !== c))) continue;
      let j = i + 2;
      while (j < to && !(line[j] === c && !isSpace(line[j - 1]))) j++;
      if (j >= to) continue;
      found.push([c, i, j]);
      if (c !== "`") walk(i + 1, j, c);
      i = j;
    }
  };
  walk(0, line.length, "");
  return found;
}

/** mIRC-formatted IRC text → plain text with XEP-0393 styling; no C0 control characters remain. */
export function mircToText(text: string): string {
  const { tokens, spans } = nest(readFormatting(text));
  // Drop the spans XEP-0393 would not recognise until none is left (each pass drops one or more, or stops).
  for (let changed = true; changed;) {
    const { text: out, placed } = render(tokens, spans);
    const openers = new Set(placed.map(([, open]) => open));
    changed = false;
    for (const [directive, open, close, n] of placed) {
      const inner = out.slice(open + 1, close);
      const before = out[open - 1];
      const valid =
        inner !== "" &&
        !isSpace(inner[0]) &&
        !isSpace(inner[inner.length - 1]) &&
        !inner.includes(directive) &&
        (before === undefined || isSpace(before) || (openers.has(open - 1) && before !== directive));
      const span = spans[n];
      if (!valid && span) {
        span.keep = false;
        changed = true;
      }
    }
  }
  const { text: out, placed } = render(tokens, spans);
  // Last guard: the parser must find exactly our spans at our markers, else the text goes out unstyled.
  const same = (a: readonly unknown[], b: readonly unknown[]): boolean =>
    a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
  const ours = new Set(placed.flatMap(([, o, c]) => [o, c]));
  const parsed = styledSpans(out);
  const exact =
    placed.every((p) => parsed.some((q) => same(p, q))) &&
    parsed.every(
      ([, o, c], i) => !(ours.has(o) || ours.has(c)) || placed.some((p) => same(p, parsed[i] ?? [])),
    );
  if (exact) return out;
  for (const span of spans) span.keep = false;
  return render(tokens, spans).text;
}

/** A CTCP message (ircdocs "CTCP"): `\x01COMMAND params\x01`, the final \x01 optional. */
export interface CtcpMessage {
  /** Uppercased command, e.g. ACTION, VERSION, PING, TIME. */
  command: string;
  params: string;
  /** One of CTCP_COMMANDS. */
  known: boolean;
}

/** Recognises a CTCP message in a PRIVMSG/NOTICE text; null when it is ordinary text. */
export function parseCtcp(text: string): CtcpMessage | null {
  if (!text.startsWith(CTCP)) return null;
  const inner = text.slice(1, text.endsWith(CTCP) && text.length > 1 ? -1 : undefined);
  const sp = inner.indexOf(" ");
  const command = (sp < 0 ? inner : inner.slice(0, sp)).toUpperCase();
  if (!/^[A-Z0-9_-]+$/.test(command)) return null;
  const params = sp < 0 ? "" : inner.slice(sp + 1);
  return { command, params, known: (CTCP_COMMANDS as readonly string[]).includes(command) };
}

/** Builds a CTCP ACTION (`/me`); \x01, NUL, CR and LF in the text are dropped so it cannot end early. */
export function ctcpAction(text: string): string {
  // eslint-disable-next-line no-control-regex
  return `${CTCP}ACTION ${text.replace(/[\x00\x01\r\n]/g, "")}${CTCP}`;
}

/** XEP-0245: a body starting with "/me " is an action; the rest is its text. */
export function parseOutgoing(body: string): { action: boolean; text: string } {
  return body.startsWith("/me ") ? { action: true, text: body.slice(4) } : { action: false, text: body };
}

/**
 * XMPP body → IRC text, before splitting into lines: XEP-0393 stays as typed; `/me ` becomes a CTCP
 * ACTION whose text may still hold newlines (toIrcLines makes each line an ACTION).
 */
export function toIrc(body: string): string {
  const { action, text } = parseOutgoing(body);
  // eslint-disable-next-line no-control-regex
  return action ? `${CTCP}ACTION ${text.replace(/\x01/g, "")}${CTCP}` : text;
}

export const FORMATTING_CODES = [
  BOLD,
  COLOR,
  HEX_COLOR,
  RESET,
  MONOSPACE,
  REVERSE,
  ITALIC,
  STRIKE,
  UNDERLINE,
];
