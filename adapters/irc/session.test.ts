/**
 * The server's bytes as the client's socket hands them over: a busy channel's burst in one chunk of many
 * lines is read line by line (no "oversized line"), and one over-long line is dropped, the connection kept.
 */
import type { IrcConnection, Message } from "matrix-org-irc";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ircConfigSchema } from "./config.js";
import { IrcConnections, IrcSession } from "./connections.js";

const SERVER = "irc.example.net";

function setup() {
  const config = ircConfigSchema.parse({ servers: { allow: [SERVER] }, lineDelayMs: 0 });
  const log = pino({ level: "silent" });
  const connections = new IrcConnections({ config, log: () => log, attach: () => undefined });
  const session = new IrcSession(
    "alice@example.org",
    SERVER,
    connections.defaults(SERVER, "alice"),
    config,
    log,
  );
  let destroyed = false;
  session.client.conn = {
    write: () => true,
    destroy: () => {
      destroyed = true;
    },
  } as unknown as IrcConnection;
  const privmsgs: string[] = [];
  session.client.on("raw", (m: Message) => {
    if (m.command === "PRIVMSG") privmsgs.push(m.args[1] ?? "");
  });
  // What the socket's 'data' listener calls (bound when the library connects).
  const data = (chunk: Buffer) => (session.client as unknown as { onData(c: Buffer): void }).onData(chunk);
  return { session, privmsgs, data, destroyed: () => destroyed };
}

describe("IrcSession reading server lines", () => {
  it("reads a 200 KiB chunk of normal lines, every line, without closing the connection", () => {
    const { privmsgs, data, destroyed } = setup();
    const sent = Array.from({ length: 4000 }, (_, i) => `line number ${i} of the burst`);
    const chunk = Buffer.from(sent.map((t) => `:bob!u@h PRIVMSG #busy :${t}\r\n`).join(""));
    expect(chunk.length).toBeGreaterThan(200 * 1024);
    // Cut where a socket would: not on a line end.
    data(chunk.subarray(0, 150_000));
    data(chunk.subarray(150_000));
    expect(privmsgs).toEqual(sent);
    expect(destroyed()).toBe(false);
  });

  it("drops one over-long line, keeps the connection and reads the next lines", () => {
    const { privmsgs, data, destroyed } = setup();
    data(Buffer.from(`:bob!u@h PRIVMSG #busy :${"x".repeat(300_000)}\r\n:bob!u@h PRIVMSG #busy :after\r\n`));
    expect(privmsgs).toEqual(["after"]);
    expect(destroyed()).toBe(false);
  });
});
