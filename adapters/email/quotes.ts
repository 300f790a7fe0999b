/**
 * The new part of a reply: what the sender wrote, without the quoted mail under it and without the
 * signature. Heuristics (as talon or email_reply_parser): when in doubt, the text is kept.
 */

/** Lines that introduce the quoted mail in the common clients (English, French, German, Outlook). */
const ATTRIBUTION = [
  /^on\b.{0,200}\bwrote:\s*$/i,
  /^le\b.{0,200}\ba écrit\s*:\s*$/i,
  /^am\b.{0,200}\bschrieb\b.{0,200}:\s*$/i,
  /^-{2,}\s*original message\s*-{2,}\s*$/i,
  /^-{2,}\s*forwarded message\s*-{2,}\s*$/i,
  /^_{20,}\s*$/,
];
/** RFC 3676 §4.3 signature separator ("-- "; many clients trim the space). */
const SIGNATURE = /^-- ?$/;

export interface Stripped {
  /** The new text. */
  text: string;
  /** Whether anything was cut. */
  stripped: boolean;
}

/** Index of the first line of a quoted block that runs to the end of the text (blank lines aside). */
function trailingQuote(lines: readonly string[]): number {
  let start = lines.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? "";
    if (line.startsWith(">")) start = i;
    else if (line.trim() !== "") break;
  }
  return start;
}

export function stripQuoted(text: string): Stripped {
  const lines = text.split(/\r?\n/);
  let cut = trailingQuote(lines);
  for (let i = 0; i < cut; i++) {
    const line = lines[i] ?? "";
    const twoLines = `${line.trim()} ${(lines[i + 1] ?? "").trim()}`;
    if (SIGNATURE.test(line) || ATTRIBUTION.some((re) => re.test(line.trim()))) {
      cut = i;
      break;
    }
    // "On Mon, 1 Jan 2024 at 10:00, Jane Friend <friend@example.com>" + "wrote:" on the next line.
    if (/^on\b/i.test(line.trim()) && ATTRIBUTION[0]!.test(twoLines)) {
      cut = i;
      break;
    }
  }
  const kept = lines.slice(0, cut).join("\n").trim();
  // Nothing new (a forward, or a mail that is all quote): show it all.
  if (cut >= lines.length || kept === "") return { text: text.trim(), stripped: false };
  return { text: kept, stripped: true };
}
