/**
 * echo-message (IRCv3): the server repeats each of our lines to a channel once it took it; a room message
 * is reflected to the user's resources only when all its lines came back, and fails for its sender when
 * the server refused one (ERR_CANNOTSENDTOCHAN).
 */

/** Own room messages awaiting the server's echo (echo-message); older ones are reflected at once. */
export const MAX_PENDING_ECHOES = 100;

/** A room message sent to IRC whose reflection waits for the server's echo of its lines. */
export interface PendingEcho {
  channel: string;
  /** Lines still to be echoed. */
  lines: number;
  /** Reflects the message; a one-line message with the archive id of its echo (channel history). */
  reflect(archived?: Promise<string | undefined>): void;
  /** The server refused a line (e.g. ERR_CANNOTSENDTOCHAN): the sender gets this error instead. */
  refuse(text: string): void;
}

/** The room messages of one connection awaiting their echo, oldest first. */
export class Echoes {
  /** `split`: some lines came back already (the message had several: no one archive id). */
  private readonly pending: (PendingEcho & { split?: boolean })[] = [];

  /** Remembers a room message for its echo; the oldest is reflected now when too many wait. */
  await(pending: PendingEcho): void {
    this.pending.push({ ...pending, channel: pending.channel.toLowerCase() });
    if (this.pending.length > MAX_PENDING_ECHOES) this.pending.shift()?.reflect();
  }

  /** One of our lines to `channel` came back: reflects the message it belonged to once all lines did. */
  echoed(channel: string, archived?: Promise<string | undefined>): void {
    const index = this.pending.findIndex((p) => p.channel === channel.toLowerCase());
    const pending = this.pending[index];
    if (!pending) return;
    const single = pending.lines === 1 && !pending.split;
    pending.lines -= 1;
    if (pending.lines > 0) {
      pending.split = true;
      return;
    }
    this.pending.splice(index, 1);
    pending.reflect(single ? archived : undefined);
  }

  /** The server refused our line to `channel`: the message it belonged to fails, not reflected. */
  refused(channel: string, text: string): void {
    const index = this.pending.findIndex((p) => p.channel === channel.toLowerCase());
    const pending = this.pending[index];
    if (!pending) return;
    this.pending.splice(index, 1);
    pending.refuse(text);
  }
}
