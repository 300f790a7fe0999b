/**
 * A user's channel command (TOPIC for a subject change) waits for the server's answer: the command's echo
 * to the channel means it was taken; a refusal numeric for that channel (482 not an operator, 442 not on
 * the channel…) comes back to the user as the stanza error, with the server's own text. No answer within
 * CHANNEL_REPLY_MS counts as taken (servers always echo a TOPIC; this only bounds the wait).
 */
import type { ErrorCondition } from "../../src/xmpp/errors.js";
import { NUMERIC } from "./message.js";

/** How long a channel command waits for its echo or a refusal before it counts as accepted. */
export const CHANNEL_REPLY_MS = 10_000;
/** Commands awaiting an answer per connection; the oldest counts as accepted beyond. */
export const MAX_PENDING_COMMANDS = 100;

/**
 * Numerics (RFC 2812 §5.2) refusing a channel command, as stanza errors.
 * ERR_CANNOTSENDTOCHAN (404) refuses messages, not commands: see the echo handling in session.ts.
 */
export const COMMAND_REFUSALS: Readonly<Record<string, ErrorCondition>> = {
  // 482: not a channel operator (e.g. a topic change in a +t channel).
  [NUMERIC.ERR_CHANOPRIVSNEEDED]: "forbidden",
  // 442: the connection is not in the channel (any more).
  [NUMERIC.ERR_NOTONCHANNEL]: "not-acceptable",
  // 403: no such channel.
  [NUMERIC.ERR_NOSUCHCHANNEL]: "item-not-found",
  // 477: the channel needs a registered nick for that.
  [NUMERIC.ERR_NEEDREGGEDNICK]: "forbidden",
};

export interface Refusal {
  condition: ErrorCondition;
  /** The server's text, e.g. "You're not channel operator". */
  serverText: string;
}

interface Pending {
  channel: string;
  command: string;
  settle(refusal: Refusal | null): void;
}

/** The channel commands of one connection awaiting the server's answer, oldest first. */
export class PendingCommands {
  private readonly pending: Pending[] = [];

  constructor(private readonly waitMs = CHANNEL_REPLY_MS) {}

  /**
   * Registers a command before it is written; `answer` resolves with the refusal, or null once echoed, timed
   * out, or cancelled (the command was never written).
   */
  expect(channel: string, command: string): { answer: Promise<Refusal | null>; cancel: () => void } {
    let entry: Pending | undefined;
    const answer = new Promise<Refusal | null>((resolve) => {
      const timer = setTimeout(() => settle(null), this.waitMs);
      timer.unref();
      const settle = (refusal: Refusal | null) => {
        clearTimeout(timer);
        const index = entry ? this.pending.indexOf(entry) : -1;
        if (index >= 0) this.pending.splice(index, 1);
        resolve(refusal);
      };
      entry = { channel: channel.toLowerCase(), command: command.toUpperCase(), settle };
    });
    if (!entry) throw new Error("unreachable: the promise executor runs at once");
    const mine = entry;
    this.pending.push(mine);
    if (this.pending.length > MAX_PENDING_COMMANDS) this.pending[0]?.settle(null);
    return { answer, cancel: () => mine.settle(null) };
  }

  /** The server echoed `command` on `channel` from the user: the oldest such command was taken. */
  echoed(channel: string, command: string): void {
    this.find(channel, command)?.settle(null);
  }

  /** A numeric about `channel`: refuses the oldest command waiting there if it is a refusal; true if so. */
  refused(channel: string, numeric: string, serverText: string): boolean {
    const condition = COMMAND_REFUSALS[numeric];
    const pending = condition === undefined ? undefined : this.find(channel);
    if (!pending || condition === undefined) return false;
    pending.settle({ condition, serverText });
    return true;
  }

  /** A command waits for its answer on `channel`. */
  waits(channel: string): boolean {
    return this.find(channel) !== undefined;
  }

  private find(channel: string, command?: string): Pending | undefined {
    const key = channel.toLowerCase();
    return this.pending.find((p) => p.channel === key && (command === undefined || p.command === command));
  }
}
