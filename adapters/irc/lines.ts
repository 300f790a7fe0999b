/**
 * Server bytes → whole IRC lines, each bounded on its own. The client library would buffer every chunk
 * until one happens to end with a line break and measure (and decode) that whole buffer again for each
 * chunk, so a busy channel's burst (many lines per chunk, hardly ever ending on a line break) looked like
 * one oversized line. Here a chunk is cut at each LF as it arrives; only the unfinished last line is kept.
 */

/** RFC 1459 §2.3 / ircdocs "Messages": a line without its tags is at most 512 bytes, CR LF included. */
export const IRC_LINE_MAX_BYTES = 512;
/** IRCv3 message-tags: the tags a server may put in front of a line, the leading @ and space included. */
export const IRC_TAGS_MAX_BYTES = 8191;
/**
 * Longest line accepted from a server; also the bound of the unparsed remainder (an unfinished line).
 * Anything longer is no IRC line: it is dropped up to its line end, the connection goes on.
 */
export const MAX_SERVER_LINE_BYTES = IRC_LINE_MAX_BYTES + IRC_TAGS_MAX_BYTES;

export class LineReader {
  /** Bytes of the unfinished line, across chunks. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Inside an over-long line: everything up to its LF is skipped. */
  private skipping = false;

  constructor(
    /** An over-long line was dropped (called once per line). */
    private readonly dropped: (bytes: number) => void,
    private readonly maxLineBytes = MAX_SERVER_LINE_BYTES,
  ) {}

  /** The whole lines this chunk completes, without their CR LF (empty lines left out). */
  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let lf = chunk.indexOf(0x0a); lf >= 0; lf = chunk.indexOf(0x0a, start)) {
      const line = this.finish(chunk.subarray(start, lf));
      if (line && line.length > 0) lines.push(line);
      start = lf + 1;
    }
    this.keep(chunk.subarray(start));
    return lines;
  }

  /** The line ending at this LF (with what was pending), or undefined when it was too long. */
  private finish(tail: Buffer): Buffer | undefined {
    const wasSkipping = this.skipping;
    const bytes = this.pendingBytes + tail.length;
    const line = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    this.skipping = false;
    if (wasSkipping) return undefined; // reported when the skipping started
    const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
    if (end > this.maxLineBytes) {
      this.dropped(bytes);
      return undefined;
    }
    return line.subarray(0, end);
  }

  /** Keeps the unfinished line, as long as it can still become a line of the allowed length. */
  private keep(rest: Buffer): void {
    if (rest.length === 0 || this.skipping) return;
    // +1: its CR may still be on its way.
    if (this.pendingBytes + rest.length > this.maxLineBytes + 1) {
      this.dropped(this.pendingBytes + rest.length);
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = true;
      return;
    }
    // A copy: the socket's chunk is not ours to hold on to.
    this.pending.push(Buffer.from(rest));
    this.pendingBytes += rest.length;
  }
}
