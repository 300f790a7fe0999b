/**
 * One connection against a scripted IRC server on loopback: registration (CAP, SASL PLAIN, a nick in use),
 * a busy channel's burst read line by line, an over-long line dropped with the connection kept, and CTCP
 * answered within the connection's reply limit.
 */
import { Socket } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { ircd, scripted } from "../../test/support/scripted-ircd.js";
import { ircConfigSchema } from "./config.js";
import { CTCP_REPLY_BURST } from "./ctcp.js";
import { IrcConnections } from "./connections.js";
import { IrcSession, type Carried, type SessionOutput, type SessionSettings } from "./session.js";

const SERVER = "irc.example.net";
const ROOM = `#busy%${SERVER}@irc.example.org`;
const PHONE = "alice@example.org/phone";

const log = pino({ level: "silent" });
const open: { quit(): void }[] = [];
const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.quit();
  for (const s of servers.splice(0)) s.close();
});

async function connect(
  script: Parameters<typeof scripted>[0],
  settings: Partial<SessionSettings> = {},
  carried?: Carried,
) {
  const server = await scripted(script);
  servers.push(server);
  const config = ircConfigSchema.parse({
    servers: { allow: [SERVER] },
    addresses: { [SERVER]: { host: "127.0.0.1", port: server.port, tls: false } },
    lineDelayMs: 0,
    connectTimeoutSeconds: 5,
  });
  const events: InboundEvent[] = [];
  /** What the session told its owner, in order. */
  const told: string[] = [];
  // Events still being made (a channel line waiting for its archive id) take their place in order.
  let chain = Promise.resolve();
  const output: SessionOutput = {
    deliver: (_s, evs) => {
      for (const e of evs)
        chain = chain.then(async () => void events.push(...(e instanceof Promise ? await e : [e])));
    },
    archive: () => Promise.resolve(undefined),
    joinHistory: (_s, evs) => Promise.resolve(evs),
    channelsChanged: () => told.push("channelsChanged"),
    idle: () => told.push("idle"),
    lost: () => undefined,
    claimChannelCtcp: () => Promise.resolve(true),
    nickJid: (nick) => `${nick}%${SERVER}@irc.example.org`,
    serverJid: (server) => `${server}@irc.example.org`,
  };
  const defaults = new IrcConnections({ config, log: () => log, deliver: () => undefined }).defaults(
    SERVER,
    "alice",
  );
  const session = new IrcSession(
    "alice@example.org",
    SERVER,
    { ...defaults, ...settings },
    config,
    log,
    output,
    carried,
  );
  open.push(session);
  session.connect();
  return { session, server, events, told };
}

const failure = async (p: Promise<unknown>): Promise<GatewayError> => {
  const err = await p.then(
    () => new Error("expected a refusal"),
    (e: unknown) => e,
  );
  if (err instanceof GatewayError) return err;
  throw err;
};

describe("IrcSession registering", () => {
  it("asks for the IRCv3 capabilities the server offers, and only those", async () => {
    const { session, server } = await connect(ircd(SERVER, "server-time echo-message batch sasl"));
    await session.ready;
    expect(server.written).toContain("CAP REQ :server-time echo-message");
    expect(session.hasCap("echo-message")).toBe(true);
    expect(session.hasCap("away-notify")).toBe(false);
  });

  it("authenticates with SASL PLAIN, and fails with not-authorized on a wrong password", async () => {
    const right = await connect(ircd(SERVER, "sasl"), { sasl: { account: "alice", password: "right" } });
    await right.session.ready;
    expect(right.server.written).toEqual(
      expect.arrayContaining(["CAP REQ sasl", "AUTHENTICATE PLAIN", "CAP END"]),
    );
    const wrong = await connect(ircd(SERVER, "sasl"), { sasl: { account: "alice", password: "wrong" } });
    expect((await failure(wrong.session.ready)).condition).toBe("not-authorized");
  });

  it("writes each line at once, without Nagle's algorithm holding it for the server's acknowledgement", async () => {
    // Otherwise the second line of a message (or the next message) waits for the server to acknowledge the
    // first: up to a delayed ACK, 40 ms on Linux, per line. Node cannot read the option back; the call is
    // what sets it (strace shows setsockopt TCP_NODELAY, for TLS too).
    const spy = vi.spyOn(Socket.prototype, "setNoDelay");
    try {
      const { session, server } = await connect(ircd(SERVER));
      await session.ready;
      const own = spy.mock.calls.filter(
        (_args, i) => (spy.mock.contexts[i] as Socket).remotePort === server.port,
      );
      expect(own.at(-1)).toEqual([true]);
    } finally {
      spy.mockRestore();
    }
  });

  it("refuses a nick in use on a first connection, and takes another on a redial", async () => {
    const first = await connect(ircd(SERVER, "", { taken: ["alice"] }));
    expect((await failure(first.session.ready)).condition).toBe("conflict");
    const redial = await connect(
      ircd(SERVER, "", { taken: ["alice"] }),
      {},
      {
        channels: new Map(),
        before: undefined,
        outageNoticeSent: false,
      },
    );
    await redial.session.ready;
    expect(redial.session.nick).toBe("alice1");
  });
});

/** A session in #busy with NAMES done, so every channel line becomes an event. */
async function inChannel() {
  const t = await connect(ircd(SERVER));
  t.session.addMember("#busy", PHONE, { roomJid: ROOM, requestedNick: "alice" });
  await t.session.ready;
  t.server.raw(":alice!u@h JOIN #busy\r\n:irc 353 alice = #busy :alice bob\r\n:irc 366 alice #busy :End\r\n");
  await vi.waitFor(() => expect(t.session.isSynced("#busy")).toBe(true));
  t.events.length = 0;
  return t;
}

const bodies = (events: InboundEvent[]) => events.flatMap((e) => (e.kind === "message" ? [e.body] : []));

describe("IrcSession reading server lines", () => {
  it("reads a 200 KiB chunk of normal lines, every line, without closing the connection", async () => {
    const { session, server, events } = await inChannel();
    const sent = Array.from({ length: 4000 }, (_, i) => `line number ${i} of the burst`);
    const chunk = Buffer.from(sent.map((t) => `:bob!u@h PRIVMSG #busy :${t}\r\n`).join(""));
    expect(chunk.length).toBeGreaterThan(200 * 1024);
    // Cut where a socket would: not on a line end.
    server.raw(chunk.subarray(0, 150_000));
    server.raw(chunk.subarray(150_000));
    await vi.waitFor(() => expect(bodies(events)).toHaveLength(sent.length), 10_000);
    expect(bodies(events)).toEqual(sent);
    expect(session.closed).toBe(false);
  });

  it("drops one over-long line, keeps the connection and reads the next lines", async () => {
    const { session, server, events } = await inChannel();
    server.raw(`:bob!u@h PRIVMSG #busy :${"x".repeat(300_000)}\r\n:bob!u@h PRIVMSG #busy :after\r\n`);
    await vi.waitFor(() => expect(bodies(events)).toEqual(["after"]));
    expect(session.registered).toBe(true);
  });

  it("reads a line that is not UTF-8 in the fallback charset", async () => {
    const { server, events } = await inChannel();
    server.raw(
      Buffer.concat([Buffer.from(":bob!u@h PRIVMSG #busy :caf"), Buffer.from([0xe9]), Buffer.from("\r\n")]),
    );
    await vi.waitFor(() => expect(bodies(events)).toEqual(["café"]));
  });

  it("answers PING with PONG", async () => {
    const { server } = await inChannel();
    server.raw("PING :token-1\r\n");
    await vi.waitFor(() => expect(server.written).toContain("PONG token-1"));
  });

  it("answers CTCP queries within the connection's reply limit, past it not at all", async () => {
    const { server } = await inChannel();
    const queries = CTCP_REPLY_BURST + 2;
    for (let i = 0; i < queries; i++) server.raw(`:bob!u@h PRIVMSG alice :\x01PING ${i}\x01\r\n`);
    server.raw(":bob!u@h PRIVMSG alice :\x01VERSION\x01\r\nPING :after\r\n");
    await vi.waitFor(() => expect(server.written).toContain("PONG after"));
    await vi.waitFor(() =>
      expect(server.written.filter((l) => l.startsWith("NOTICE bob"))).toHaveLength(CTCP_REPLY_BURST),
    );
    // Flood control is free in this test: what was not written by now was not answered.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.written.filter((l) => l.startsWith("NOTICE bob"))).toEqual(
      [...Array(CTCP_REPLY_BURST).keys()].map((i) => `NOTICE bob :\x01PING ${i}\x01`),
    );
  });
});

describe("IrcSession applying what the handlers decided", () => {
  it("follows its own nick change, and forgets a channel it was kicked from, telling its owner", async () => {
    const { session, server, told } = await inChannel();
    told.length = 0;
    server.raw(":alice!u@h NICK alice2\r\n");
    await vi.waitFor(() => expect(session.nick).toBe("alice2"));
    expect(session.channel("#busy")?.users.has("alice2")).toBe(true);
    server.raw(":bob!u@h KICK #busy alice2 :out\r\n");
    await vi.waitFor(() => expect(session.channels.has("#busy")).toBe(false));
    expect(session.channel("#busy")).toBeUndefined();
    expect(told).toEqual(["channelsChanged", "idle"]);
  });
});

describe("IrcSession and what the server says to the user", () => {
  it("says the MOTD from the server JID once, and hands replies to a listener until the connection goes", async () => {
    const { session, server, events } = await inChannel();
    server.raw(
      ":irc.example.net NOTICE alice :*** Looking up your hostname\r\n:irc 375 alice :- motd -\r\n" +
        ":irc.example.net 372 alice :- Be nice.\r\n:irc.example.net 376 alice :End\r\n",
    );
    await session.welcomed(10_000);
    const motd = events.filter((e) => e.kind === "message");
    expect(motd).toEqual([
      expect.objectContaining({
        to: "alice@example.org",
        from: `${SERVER}@irc.example.org`,
        type: "chat",
        body: `Notices from ${SERVER}:\n*** Looking up your hostname\n\nMessage of the day of ${SERVER}:\nBe nice.`,
      }),
    ]);
    const replies: string[] = [];
    let closed = false;
    session.listenReplies({ line: (m) => replies.push(m.command), closed: () => (closed = true) });
    server.raw(
      ":bob!u@h PRIVMSG #busy :not a reply\r\n:irc 311 alice bob u h * :Bob\r\n:alice!u@h MODE alice :+i\r\n" +
        ":irc 318 alice bob :End\r\n",
    );
    await vi.waitFor(() => expect(replies).toEqual(["311", "MODE", "318"]));
    server.drop();
    await vi.waitFor(() => expect(closed).toBe(true));
  });
});
