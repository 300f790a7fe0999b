/**
 * What an IRC server says to the user itself reaches them from the server JID (`irc.example.net@…`, or the
 * bare domain with a fixed server), as biboumi does, without flooding them:
 * - the message of the day (RPL_MOTDSTART 375, RPL_MOTD 372…, RPL_ENDOFMOTD 376) as ONE message, with the
 *   server notices sent while connecting ("*** Looking up your hostname…") at its head;
 * - later server notices one message each, within a rate per connection (a burst, then one per interval);
 *   those over it are counted and the next one shown says how many were left out.
 * A redialed or restored connection (the user was connected already) does not show the MOTD again.
 * The server's replies to the user's own commands (numerics, our own NICK and user MODE) go to whoever
 * listens for them: the console (console.ts) and the channel list (channel-list.ts).
 * The handlers below read the lines (pure, in the handler table of handlers.ts); ServerMessages is the
 * session's record of them, applied by IrcSession, which says the messages through its output.
 */
import type { Logger } from "../../src/log.js";
import { isChannelName } from "./codec.js";
import { ReplyLimit } from "./ctcp.js";
import { mircToText } from "./format.js";
import type { IrcMessage } from "./message.js";
import type { ReplyListener } from "./session-types.js";
import type { Change, Handler } from "./state.js";

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

/**
 * A NOTICE from the server itself (no nick!user@host prefix) to the user, not to a channel nor a CTCP reply:
 * one serverNotice change; any other line without a nick changes nothing.
 */
export function serverNotice(m: IrcMessage): Change[] {
  const [target = "", raw = ""] = m.params;
  if (m.command !== "NOTICE" || m.nick !== "" || isChannelName(target) || raw.startsWith("\x01")) return [];
  const text = mircToText(raw).trim();
  return text === "" ? [] : [{ kind: "serverNotice", text }];
}

/** The MOTD's numerics; ERR_NOMOTD (422) ends registration all the same. */
export const MOTD_HANDLERS: Readonly<Record<string, Handler>> = {
  "375": () => [{ kind: "motd", part: "start" }],
  "372": (_state, m) => [
    { kind: "motd", part: "line", text: mircToText((m.params[1] ?? "").replace(/^- ?/, "")).trimEnd() },
  ],
  "376": () => [{ kind: "motd", part: "end" }],
  "422": () => [{ kind: "motd", part: "end" }],
};

/** The changes ServerMessages applies. */
export type ServerChange = Extract<Change, { kind: "serverNotice" | "motd" | "reply" }>;

/** One connection's MOTD, server notices and replies to the user's commands, as the session applies them. */
export class ServerMessages {
  /** Resolves once the connection's own MOTD ended (or there was none, or the connection closed). */
  private readonly welcome: Promise<void>;
  private readonly listeners = new Set<ReplyListener>();
  private ended = false;
  private readonly held: string[] = [];
  private heldDropped = 0;
  private motdLines: string[] | undefined;
  private isWelcomed = false;
  private readonly limit = new ReplyLimit(NOTICE_BURST, NOTICE_INTERVAL_MS);
  private skipped = 0;
  private settle: () => void = () => undefined;

  /**
   * `quiet`: a redialed or restored connection, whose MOTD is not shown again; `say` sends one message
   * from the server JID to the user.
   */
  constructor(
    private readonly server: string,
    private readonly quiet: boolean,
    private readonly log: Logger,
    private readonly say: (body: string) => void,
  ) {
    this.welcome = new Promise<void>((resolve) => (this.settle = resolve));
  }

  /** Resolves once the connection's own MOTD was read (or it closed), at most `waitMs` from now. */
  welcomed(waitMs: number): Promise<void> {
    const waited = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref());
    return Promise.race([this.welcome, waited]);
  }

  apply(change: ServerChange): void {
    if (change.kind === "serverNotice") return this.notice(change.text);
    if (change.kind === "motd") return this.motd(change);
    for (const listener of [...this.listeners]) listener.line(change.message);
  }

  /** The listener reads every reply from now until the returned function is called or the connection ends. */
  listen(listener: ReplyListener): () => void {
    if (this.ended) {
      listener.closed();
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The connection is gone: nobody waits for its MOTD or a reply any more. */
  closed(): void {
    this.ended = true;
    this.settle();
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener.closed();
  }

  private notice(text: string): void {
    if (!this.isWelcomed) {
      if (this.held.length < MAX_HELD_NOTICES) this.held.push(text);
      else this.heldDropped++;
      return;
    }
    if (!this.limit.tryTake()) {
      this.skipped++;
      this.log.debug({ server: this.server }, "server notice not shown: notice rate reached");
      return;
    }
    const note =
      this.skipped > 0 ? `\n(${this.skipped} earlier notices from ${this.server} were left out)` : "";
    this.skipped = 0;
    this.say(`${this.server}: ${text}${note}`);
  }

  /** A later MOTD answers the user's own MOTD command (see console.ts): not read here. */
  private motd(change: Extract<Change, { kind: "motd" }>): void {
    if (this.isWelcomed) return;
    if (change.part === "start") this.motdLines = [];
    else if (change.part === "line") (this.motdLines ??= []).push(change.text);
    else this.welcomeWith(this.motdLines ?? []);
  }

  private welcomeWith(lines: string[]): void {
    this.isWelcomed = true;
    this.settle();
    if (this.quiet) return;
    const parts: string[] = [];
    if (this.held.length > 0)
      parts.push(
        [
          `Notices from ${this.server}:`,
          ...this.held,
          ...(this.heldDropped > 0 ? [`(${this.heldDropped} more notices left out)`] : []),
        ].join("\n"),
      );
    if (lines.length > 0) {
      const shown = lines.slice(0, MAX_MOTD_LINES);
      const cut = lines.length - shown.length;
      parts.push(
        [
          `Message of the day of ${this.server}:`,
          ...shown,
          ...(cut > 0 ? [`(${cut} more lines left out)`] : []),
        ].join("\n"),
      );
    }
    this.held.length = 0;
    if (parts.length > 0) this.say(parts.join("\n\n"));
  }
}
