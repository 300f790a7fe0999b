/** A bare IRC client for tests: raw lines in and out, nothing hidden. */
import { createConnection, type Socket } from "node:net";

/** A bare IRC client on a socket: records every line the server sends, answers PING. */
export class RawIrc {
  readonly lines: string[] = [];
  private waiters: { match: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private buffer = "";
  /** The connection ended (the server went away, or close() was called): send() does nothing then. */
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("close", () => (this.closed = true));
    // A server that dies mid-write resets the socket: the close above says so; nothing to throw.
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      const parts = this.buffer.split("\r\n");
      this.buffer = parts.pop() ?? "";
      for (const line of parts) {
        if (line.startsWith("PING ")) this.send(`PONG ${line.slice(5)}`);
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => !(w.match(line) && (w.resolve(line), true)));
      }
    });
  }

  static async connect(port: number, nick: string): Promise<RawIrc> {
    const socket = createConnection({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const irc = new RawIrc(socket);
    irc.send(`NICK ${nick}`);
    irc.send(`USER ${nick} 0 * :raw test client`);
    await irc.waitFor((l) => / 001 /.test(l));
    return irc;
  }

  send(line: string | Buffer): void {
    if (this.closed) return;
    this.socket.write(Buffer.concat([Buffer.from(line), Buffer.from("\r\n")]));
  }

  waitFor(match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching IRC line; last lines:\n${this.lines.slice(-10).join("\n")}`)),
        timeoutMs,
      );
      this.waiters.push({
        match,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Joins `channel` and waits for the end of its NAMES list (366). */
  async join(channel: string, timeoutMs = 10_000): Promise<void> {
    this.send(`JOIN ${channel}`);
    const target = channel.toLowerCase();
    await this.waitFor((l) => {
      const words = l.split(" ");
      return words[1] === "366" && words[3]?.toLowerCase() === target;
    }, timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}
