/**
 * What an IRC server says to the user itself reaches them from the server JID (`irc.example.net@…`, or the
 * bare domain with a fixed server), as biboumi does, without flooding them:
 * - the message of the day (RPL_MOTDSTART 375, RPL_MOTD 372…, RPL_ENDOFMOTD 376) as ONE message, with the
 *   server notices sent while connecting ("*** Looking up your hostname…") at its head;
 * - later server notices one message each, within a rate per connection (a burst, then one per interval);
 *   those over it are counted and the next one shown says how many were left out.
 * A redialed or restored connection (the user was connected already) does not show the MOTD again.
 * matrix-org-irc drops NOTICEs without a nick (a server's), so they are read from the raw lines here.
 */
import { randomUUID } from "node:crypto";
import type { Message } from "matrix-org-irc";
import type { InboundEvent } from "../../src/adapter.js";
import type { Logger } from "../../src/log.js";
import type { IrcSession } from "./session.js";
import { ReplyLimit } from "./ctcp.js";
import { mircToText } from "./format.js";
import { isChannelName } from "./codec.js";

/** Server notices held while connecting, shown with the MOTD; later ones beyond are dropped. */
export const MAX_HELD_NOTICES = 20;
/** MOTD lines shown; a longer MOTD is cut with a line saying how many were left out. */
export const MAX_MOTD_LINES = 200;
/** Server notices after connecting: this many at once, then one per interval (the rest are counted). */
export const NOTICE_BURST = 5;
export const NOTICE_INTERVAL_MS = 2_000;
/**
 * Longest the console waits for the connection's MOTD to end before its command goes out, so the MOTD is
 * not read as the command's reply (a server without RPL_ENDOFMOTD / ERR_NOMOTD would hold it forever).
 */
export const WELCOME_WAIT_MS = 10_000;

export interface ServerMessagesSink {
  readonly log: Logger;
  emit(session: IrcSession, events: InboundEvent[]): void;
  /** The server's JID (the bare domain for the fixed server). */
  serverJid(server: string): string;
}

/** Per connection: resolves once the connection's MOTD ended (or there was none). */
const welcomes = new WeakMap<IrcSession, Promise<void>>();

/** Resolves once the connection's own MOTD was read (at most WELCOME_WAIT_MS after this call). */
export function welcomeDone(session: IrcSession, waitMs = WELCOME_WAIT_MS): Promise<void> {
  const done = welcomes.get(session) ?? Promise.resolve();
  return Promise.race([done, new Promise<void>((r) => setTimeout(r, waitMs).unref())]);
}

/** A NOTICE from the server itself (no nick!user@host prefix) to the user, not to a channel. */
export function isServerNotice(m: Message): boolean {
  if (m.command !== "NOTICE" || m.nick) return false;
  const target = m.args[0] ?? "";
  return !isChannelName(target) && !(m.args[1] ?? "").startsWith("\x01");
}

/** Attaches the MOTD and server-notice handling to a new session. Never throws from a handler. */
export function attachServerMessages(session: IrcSession, sink: ServerMessagesSink): void {
  const client = session.client;
  const server = session.server;
  const quiet = session.restoring;
  const held: string[] = [];
  let heldDropped = 0;
  let motd: string[] | undefined;
  let welcomed = false;
  const limit = new ReplyLimit(NOTICE_BURST, NOTICE_INTERVAL_MS);
  let skipped = 0;
  let settle: () => void = () => undefined;
  welcomes.set(session, new Promise<void>((resolve) => (settle = resolve)));

  const say = (body: string) =>
    sink.emit(session, [
      {
        kind: "message",
        to: session.user,
        from: sink.serverJid(server),
        id: `irc-${randomUUID()}`,
        type: "chat",
        body,
      },
    ]);

  const welcome = (lines: string[]) => {
    welcomed = true;
    settle();
    if (quiet) return;
    const parts: string[] = [];
    if (held.length > 0)
      parts.push(
        [
          `Notices from ${server}:`,
          ...held,
          ...(heldDropped > 0 ? [`(${heldDropped} more notices left out)`] : []),
        ].join("\n"),
      );
    if (lines.length > 0) {
      const shown = lines.slice(0, MAX_MOTD_LINES);
      const cut = lines.length - shown.length;
      parts.push(
        [
          `Message of the day of ${server}:`,
          ...shown,
          ...(cut > 0 ? [`(${cut} more lines left out)`] : []),
        ].join("\n"),
      );
    }
    held.length = 0;
    if (parts.length > 0) say(parts.join("\n\n"));
  };

  client.on("raw", (m: Message) => {
    try {
      if (isServerNotice(m)) {
        const text = mircToText(m.args[1] ?? "").trim();
        if (text === "") return;
        if (!welcomed) {
          if (held.length < MAX_HELD_NOTICES) held.push(text);
          else heldDropped++;
          return;
        }
        if (!limit.tryTake()) {
          skipped++;
          sink.log.debug({ jid: session.user, server }, "server notice not shown: notice rate reached");
          return;
        }
        const note = skipped > 0 ? `\n(${skipped} earlier notices from ${server} were left out)` : "";
        skipped = 0;
        say(`${server}: ${text}${note}`);
        return;
      }
      if (welcomed) return; // a later MOTD answers the user's own MOTD command (see console.ts)
      switch (m.rawCommand) {
        case "375":
          motd = [];
          return;
        case "372":
          if (motd) motd.push(mircToText((m.args[1] ?? "").replace(/^- ?/, "")).trimEnd());
          else motd = [mircToText((m.args[1] ?? "").replace(/^- ?/, "")).trimEnd()];
          return;
        case "376":
          welcome(motd ?? []);
          return;
        case "422": // ERR_NOMOTD: registration is over all the same
          welcome([]);
          return;
      }
    } catch (err) {
      sink.log.error({ err, server }, "IRC server message not handled");
    }
  });
  client.on("abort", () => settle());
}
