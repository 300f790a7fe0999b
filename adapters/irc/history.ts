/**
 * XEP-0045 §7.2.14 history on join, served from the channel archive (archive.ts): the lines a joining
 * resource asked for (`maxstanzas`, `maxchars`, `seconds`, `since`), each with an XEP-0203 delay and the
 * archive's XEP-0359 stanza-id, sent after the occupants and before the subject (§7.2.15 order). A join
 * without `<history/>` gets the server's `historyLines` (biboumi's max_history_length, 20 by default);
 * `maxstanzas="0"` or `maxchars="0"` gets none.
 *
 * `maxchars` counts the characters of the lines' text (nick, body, subject), not of the full stanzas the
 * XEP describes: the stanza's size depends on the client's own JID, which the user does not see either way.
 */
import type { HistoryRequest, InboundEvent } from "../../src/adapter.js";
import type { StoredLine } from "./archive.js";

/** Lines of history one join may get at most, whatever it asks for. */
export const MAX_HISTORY_LINES = 1_000;
/** Joins waiting for their occupant list whose history request is remembered at once; the oldest go first. */
export const MAX_PENDING_JOINS = 10_000;
/** How long a join's history request waits for the channel's occupant list (a join that failed leaves one). */
export const PENDING_JOIN_MS = 5 * 60_000;

/** What to read from the archive for a request: how many lines at most, and from when. */
export function historyRange(
  request: HistoryRequest | undefined,
  defaultLines: number,
  now = Date.now(),
): { max: number; startMs?: number; maxChars?: number } {
  if (request === undefined) return { max: Math.min(defaultLines, MAX_HISTORY_LINES) };
  const max = Math.min(request.maxstanzas ?? MAX_HISTORY_LINES, MAX_HISTORY_LINES);
  if (request.maxchars === 0) return { max: 0 };
  const starts = [
    ...(request.seconds === undefined ? [] : [now - request.seconds * 1000]),
    ...(request.since === undefined ? [] : [request.since.getTime()]),
  ];
  return {
    max,
    ...(starts.length ? { startMs: Math.max(...starts) } : {}),
    ...(request.maxchars === undefined ? {} : { maxChars: request.maxchars }),
  };
}

/** The newest lines (given oldest first) whose text fits in `maxChars`, oldest first. */
export function fitChars(lines: StoredLine[], maxChars: number | undefined): StoredLine[] {
  if (maxChars === undefined) return lines;
  let used = 0;
  let from = lines.length;
  while (from > 0) {
    const line = lines[from - 1];
    if (line === undefined) break;
    used += (line.nick ?? "").length + line.body.length + (line.subject ?? "").length;
    if (used > maxChars) break;
    from--;
  }
  return lines.slice(from);
}

/** One archived line as a history message for a joining resource. */
export function historyEvent(to: string, roomJid: string, line: StoredLine): InboundEvent {
  return {
    kind: "message",
    to,
    from: line.nick ? `${roomJid}/${line.nick}` : roomJid,
    id: `irc-h-${line.id}`,
    type: "groupchat",
    body: line.body,
    ...(line.subject === undefined ? {} : { subject: line.subject }),
    delay: new Date(line.ms).toISOString(),
    archiveId: line.id,
  };
}

/** The join's closing subject (XEP-0045 §7.2.15): from the room itself, subject set, no body. */
export function isJoinSubject(event: InboundEvent): boolean {
  return (
    event.kind === "message" && event.subject !== undefined && event.body === "" && !event.from.includes("/")
  );
}

/**
 * Inserts, before each joining resource's subject, the history `fetch` returns for it (undefined: that
 * resource is not joining now, e.g. the occupant list after a reconnect).
 */
export async function insertHistory(
  events: readonly InboundEvent[],
  fetch: (to: string, roomJid: string) => Promise<InboundEvent[]> | undefined,
): Promise<InboundEvent[]> {
  const out: InboundEvent[] = [];
  for (const event of events) {
    if (isJoinSubject(event)) {
      const history = fetch(event.to, event.from);
      if (history) out.push(...(await history));
    }
    out.push(event);
  }
  return out;
}

/** History requests of joins in progress, keyed by (resource, room); bounded in size and age. */
export class PendingJoins {
  private readonly joins = new Map<string, { request: HistoryRequest | undefined; at: number }>();

  private static key(to: string, roomJid: string): string {
    return `${to}\n${roomJid.toLowerCase()}`;
  }

  add(to: string, roomJid: string, request: HistoryRequest | undefined, now = Date.now()): void {
    const key = PendingJoins.key(to, roomJid);
    this.joins.delete(key);
    this.joins.set(key, { request, at: now });
    for (const [k, v] of this.joins) {
      if (this.joins.size <= MAX_PENDING_JOINS && now - v.at < PENDING_JOIN_MS) break;
      this.joins.delete(k);
    }
  }

  /** The request of a join in progress (once), or null when none is. */
  take(to: string, roomJid: string, now = Date.now()): { request: HistoryRequest | undefined } | null {
    const key = PendingJoins.key(to, roomJid);
    const join = this.joins.get(key);
    this.joins.delete(key);
    if (!join || now - join.at >= PENDING_JOIN_MS) return null;
    return { request: join.request };
  }
}
