/** A bare SMTP client for tests: one command, one reply (multi-line replies joined), nothing hidden. */
import { createConnection, type Socket } from "node:net";

export class SmtpSession {
  private buffer = "";
  private readonly replies: string[] = [];
  private waiters: ((reply: string) => void)[] = [];
  private current: string[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf("\r\n")) !== -1) {
        const line = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        this.current.push(line);
        // RFC 5321 §4.2.1: "250-" continues a reply, "250 " ends it.
        if (line.length < 4 || line[3] !== "-") {
          const reply = this.current.join("\n");
          this.current = [];
          const waiter = this.waiters.shift();
          if (waiter) waiter(reply);
          else this.replies.push(reply);
        }
      }
    });
  }

  /** Connects and reads the greeting. */
  static async open(port: number): Promise<SmtpSession> {
    const socket = createConnection({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const session = new SmtpSession(socket);
    const greeting = await session.reply();
    if (!greeting.startsWith("220")) throw new Error(`unexpected greeting: ${greeting}`);
    return session;
  }

  reply(timeoutMs = 10_000): Promise<string> {
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no SMTP reply")), timeoutMs);
      this.waiters.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  /** Sends one line (CRLF added) and returns the reply. */
  command(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`, "latin1");
    return this.reply();
  }

  /** Sends a message body after DATA's 354 (dot-stuffing is the caller's concern) and returns the reply. */
  data(body: string | Buffer): Promise<string> {
    this.socket.write(Buffer.concat([Buffer.from(body), Buffer.from("\r\n.\r\n")]));
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}
