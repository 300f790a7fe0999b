/**
 * IRC lines in → events for the XMPP user out, through a real matrix-org-irc client fed server lines (no
 * network: what it writes goes to an array).
 */
import { parseMessage, type IrcConnection } from "matrix-org-irc";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import { ircConfigSchema } from "./config.js";
import { IrcConnections, IrcSession } from "./connections.js";
import { CTCP_REPLY_BURST } from "./ctcp.js";
import { attachInbound } from "./inbound.js";

const SERVER = "irc.example.net";
const ROOM = `#chat%${SERVER}@irc.example.org`;
const PHONE = "alice@example.org/phone";

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
  const written: string[] = [];
  // Stands in for the socket: only write() is used once a client is connected.
  session.client.conn = { write: (d: string) => written.push(d) } as unknown as IrcConnection;
  const events: InboundEvent[] = [];
  attachInbound(session, {
    log,
    connections,
    emit: (_s, evs) => events.push(...evs),
    persist: () => undefined,
    claimChannelCtcp: () => Promise.resolve(true),
    nickJid: (nick, server) => `${nick.toLowerCase()}%${server}@irc.example.org`,
  });
  const server = (...lines: string[]) => {
    for (const line of lines) session.client.emit("raw", parseMessage(line, false));
  };
  server(":irc.example.net 005 alice PREFIX=(ov)@+ CHANTYPES=# :are supported by this server");
  session.channels.set("#chat", new Map([[PHONE, { roomJid: ROOM, requestedNick: "alice" }]]));
  return { session, events, server, written };
}

function joined() {
  const t = setup();
  t.server(
    ":alice!u@h JOIN #chat",
    ":irc.example.net 332 alice #chat :Be nice",
    ":irc.example.net 353 alice = #chat :alice @bob carol",
    ":irc.example.net 366 alice #chat :End of NAMES list",
  );
  return t;
}

describe("IRC → XMPP events", () => {
  it("turns NAMES into occupants, then the user's own presence with 110, then the topic", () => {
    const { events } = joined();
    expect(events.map((e) => [e.kind, e.from])).toEqual([
      ["presence", `${ROOM}/bob`],
      ["presence", `${ROOM}/carol`],
      ["presence", `${ROOM}/alice`],
      ["message", ROOM],
    ]);
    expect(events[0]).toMatchObject({ to: PHONE, muc: { role: "moderator", affiliation: "admin" } });
    expect(events[2]).toMatchObject({ muc: { statusCodes: [110] } });
    expect(events[3]).toMatchObject({ type: "groupchat", body: "", subject: "Be nice" });
  });

  it("shows nothing of a channel before its NAMES list arrived", () => {
    const { events, server } = setup();
    server(":alice!u@h JOIN #chat", ":bob!u@h PRIVMSG #chat :early");
    expect(events).toEqual([]);
  });

  it("shows channel text from room/nick with mIRC bold as XEP-0393, actions as /me", () => {
    const { events, server } = joined();
    events.length = 0;
    server(":bob!u@h PRIVMSG #chat :\x02hi\x02 all", ":bob!u@h PRIVMSG #chat :\x01ACTION waves\x01");
    expect(events.map((e) => (e.kind === "message" ? [e.from, e.type, e.body] : e.kind))).toEqual([
      [`${ROOM}/bob`, "groupchat", "*hi* all"],
      [`${ROOM}/bob`, "groupchat", "/me waves"],
    ]);
  });

  it("shows a private message from the nick's own JID, to the bare JID", () => {
    const { events, server } = joined();
    events.length = 0;
    server(":Bob!u@h PRIVMSG alice :psst");
    expect(events).toMatchObject([
      {
        kind: "message",
        to: "alice@example.org",
        from: `bob%${SERVER}@irc.example.org`,
        type: "chat",
        body: "psst",
      },
    ]);
  });

  it("reports a nick change of a user without prefix (303), and keeps the channel's list right", () => {
    const { events, server, session } = joined();
    events.length = 0;
    server(":carol!u@h NICK carol2");
    expect(events).toMatchObject([
      { type: "unavailable", from: `${ROOM}/carol`, muc: { nick: "carol2", statusCodes: [303] } },
      { from: `${ROOM}/carol2` },
    ]);
    expect([...(session.client.chanData("#chat")?.users.keys() ?? [])].sort()).toEqual([
      "alice",
      "bob",
      "carol2",
    ]);
  });

  it("reports parts and quits with the reason, and a kick of the user with 307 and 110", () => {
    const { events, server, session } = joined();
    events.length = 0;
    server(":carol!u@h PART #chat :later", ":bob!u@h KICK #chat alice :spam");
    expect(events).toMatchObject([
      { type: "unavailable", from: `${ROOM}/carol`, status: "later" },
      {
        type: "unavailable",
        from: `${ROOM}/alice`,
        muc: { statusCodes: [307, 110], actor: "bob", reason: "spam" },
      },
    ]);
    expect(session.channels.has("#chat")).toBe(false);
  });

  it("shows topics and part, quit and kick reasons without mIRC colour and control codes", () => {
    const { events, server } = joined();
    events.length = 0;
    server(
      ":bob!u@h TOPIC #chat :\x0304red\x03 and \x02bold\x02",
      ":carol!u@h PART #chat :\x0312blue\x03 bye",
      ":dave!u@h JOIN #chat",
      ":dave!u@h QUIT :\x0304,01gone\x0f home",
      ":erin!u@h JOIN #chat",
      ":bob!u@h KICK #chat erin :\x0304spam\x03",
    );
    expect(events.filter((e) => e.kind === "message")).toMatchObject([{ subject: "red and *bold*" }]);
    expect(events.filter((e) => e.kind === "presence" && e.type === "unavailable")).toMatchObject([
      { from: `${ROOM}/carol`, status: "blue bye" },
      { from: `${ROOM}/dave`, status: "gone home" },
      { from: `${ROOM}/erin`, status: "Kicked by bob: spam", muc: { reason: "spam", actor: "bob" } },
    ]);
  });

  it("shows the topic of a channel without mIRC codes on join", () => {
    const { events, server } = setup();
    server(
      ":alice!u@h JOIN #chat",
      ":irc.example.net 332 alice #chat :\x0304Be\x03 nice",
      ":irc.example.net 353 alice = #chat :alice @bob",
      ":irc.example.net 366 alice #chat :End of NAMES list",
    );
    expect(events.filter((e) => e.kind === "message")).toMatchObject([{ subject: "Be nice" }]);
  });

  it("answers CTCP queries within the connection's reply limit, past it not at all", async () => {
    const { server, written } = joined();
    const queries = CTCP_REPLY_BURST + 2;
    for (let i = 0; i < queries; i++) server(`:bob!u@h PRIVMSG alice :\x01PING ${i}\x01`);
    server(":bob!u@h PRIVMSG alice :\x01VERSION\x01");
    await vi.waitFor(() =>
      expect(written.filter((l) => l.includes("NOTICE bob"))).toHaveLength(CTCP_REPLY_BURST),
    );
    // Flood control is free in this test: what was not written by now was not answered.
    await new Promise((resolve) => setImmediate(resolve));
    expect(written.filter((l) => l.includes("NOTICE bob"))).toEqual(
      [...Array(CTCP_REPLY_BURST).keys()].map((i) => `NOTICE bob :\x01PING ${i}\x01\r\n`),
    );
  });

  it("turns a refused JOIN into a MUC presence error and forgets the channel", () => {
    const { events, server, session } = setup();
    server(":irc.example.net 474 alice #chat :Cannot join channel (+b)");
    expect(events).toMatchObject([
      {
        kind: "presence",
        to: PHONE,
        from: `${ROOM}/alice`,
        type: "error",
        error: { condition: "forbidden" },
      },
    ]);
    expect(session.channels.has("#chat")).toBe(false);
  });

  it("skips a malformed server line the client library chokes on, and goes on", () => {
    const { events, server } = joined();
    events.length = 0;
    expect(() => server(":irc.example.net 001")).not.toThrow();
    server(":bob!u@h PRIVMSG #chat :still alive");
    expect(events).toMatchObject([{ kind: "message", body: "still alive" }]);
  });
});
