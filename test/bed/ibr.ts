import { connect, type Socket } from "node:net";

/** An account to create on an XMPP server. */
export interface Account {
  user: string;
  password: string;
}

/** In-band registration failed (other than "already exists"). */
export class RegistrationError extends Error {
  override name = "RegistrationError";
}

const escapeXml = (s: string): string =>
  s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");

const attr = (tag: string, name: string): string | undefined =>
  new RegExp(`\\s${name}=(["'])(.*?)\\1`).exec(tag)?.[2];

/**
 * A raw, unauthenticated c2s stream used only for XEP-0077 in-band registration: several
 * registrations run one after another on the same stream (both Prosody and ejabberd allow that,
 * which saves a TCP and stream set-up per account).
 */
class RegistrationStream {
  private buffer = "";
  private waiter: (() => void) | undefined;
  private closed: Error | undefined;
  private nextId = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly label: string,
  ) {
    socket.setEncoding("utf8");
    socket.setNoDelay(true);
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      this.wake();
    });
    const fail = (err: Error): void => {
      this.closed ??= err;
      this.wake();
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new RegistrationError(`${label}: connection closed`)));
  }

  static async open(port: number, host: string, timeoutMs: number): Promise<RegistrationStream> {
    const label = `in-band registration on 127.0.0.1:${port} (${host})`;
    const socket = connect({ host: "127.0.0.1", port });
    const stream = new RegistrationStream(socket, label);
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new RegistrationError(`${label}: no answer in ${timeoutMs} ms`)),
    );
    socket.write(
      `<?xml version='1.0'?><stream:stream to='${escapeXml(host)}' xmlns='jabber:client' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
    );
    await stream.until(() => {
      const end = stream.buffer.indexOf("</stream:features>");
      if (end < 0) return false;
      if (!stream.buffer.includes("jabber.org/features/iq-register")) {
        throw new RegistrationError(`${label}: server does not offer in-band registration: ${stream.buffer}`);
      }
      stream.buffer = stream.buffer.slice(end + "</stream:features>".length);
      return true;
    });
    return stream;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** Waits until `done()` (which reads and consumes the buffer) returns true. */
  private async until(done: () => boolean): Promise<void> {
    for (;;) {
      if (done()) return;
      if (this.buffer.includes("<stream:error") || this.buffer.includes("</stream:stream>")) {
        throw new RegistrationError(`${this.label}: stream closed by server: ${this.buffer}`);
      }
      if (this.closed) throw this.closed;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** Registers one account; an existing account (conflict) counts as success. */
  async register({ user, password }: Account): Promise<void> {
    const id = `reg${++this.nextId}`;
    this.socket.write(
      `<iq type='set' id='${id}'><query xmlns='jabber:iq:register'>` +
        `<username>${escapeXml(user)}</username><password>${escapeXml(password)}</password></query></iq>`,
    );
    let reply = "";
    await this.until(() => {
      for (const match of this.buffer.matchAll(/<iq\b[^>]*>/g)) {
        const tag = match[0];
        if (attr(tag, "id") !== id) continue;
        const start = match.index;
        const end = tag.endsWith("/>") ? start + tag.length : this.buffer.indexOf("</iq>", start);
        if (end < 0) return false;
        const stop = tag.endsWith("/>") ? end : end + "</iq>".length;
        reply = this.buffer.slice(start, stop);
        this.buffer = this.buffer.slice(stop);
        return true;
      }
      return false;
    });
    const type = attr(reply, "type");
    if (type === "result" || (type === "error" && reply.includes("<conflict"))) return;
    throw new RegistrationError(`${this.label}: registering ${user} failed: ${reply}`);
  }

  close(): void {
    if (this.closed) return;
    this.socket.end("</stream:stream>");
  }
}

/**
 * Registers accounts by XEP-0077 in-band registration over plain c2s, on `concurrency` parallel
 * streams. Accounts that already exist count as registered.
 */
export async function registerInBand(
  port: number,
  host: string,
  accounts: Account[],
  { concurrency = 4, timeoutMs = 30_000 }: { concurrency?: number; timeoutMs?: number } = {},
): Promise<void> {
  const queue = [...accounts];
  const worker = async (): Promise<void> => {
    const stream = await RegistrationStream.open(port, host, timeoutMs);
    try {
      for (let account = queue.shift(); account; account = queue.shift()) await stream.register(account);
    } finally {
      stream.close();
    }
  };
  const workers = Math.max(1, Math.min(concurrency, queue.length));
  await Promise.all(Array.from({ length: queue.length === 0 ? 0 : workers }, worker));
}
