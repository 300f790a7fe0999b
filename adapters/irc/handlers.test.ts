/**
 * The handler table, called as it is meant to be: a connection's state and one parsed server line in, the
 * changes out. No socket, no client library, no adapter.
 */
import { describe, expect, it } from "vitest";
import type { InboundEvent } from "../../src/adapter.js";
import { CTCP_VERSION } from "./ctcp.js";
import { handle, rosterEvents, type Change, type Member, type SessionState } from "./handlers.js";
import { parseLine } from "./message.js";
import { DEFAULT_SUPPORT, type ChannelView } from "./roster.js";

const SERVER = "irc.example.net";
const ROOM = `#chat%${SERVER}@irc.example.org`;
const PHONE = "alice@example.org/phone";
const LAPTOP = "alice@example.org/laptop";

interface Fixture {
  users?: Record<string, string>;
  moderated?: boolean;
  topic?: string;
  synced?: boolean;
  resources?: string[];
  mentionsOnly?: boolean;
  awaitsCommand?: boolean;
  before?: SessionState["before"];
  outageNoticeSent?: boolean;
}

/** Alice's connection, in #chat with her phone (and more resources), as a handler sees it. */
function state(f: Fixture = {}): SessionState {
  const members = new Map<string, Member>(
    (f.resources ?? [PHONE]).map((to) => [to, { roomJid: ROOM, requestedNick: "alice" }]),
  );
  const chat: ChannelView = {
    users: new Map(Object.entries(f.users ?? { alice: "", bob: "@", carol: "" })),
    moderated: f.moderated ?? false,
    topic: f.topic ?? "",
  };
  let ids = 0;
  return {
    user: "alice@example.org",
    server: SERVER,
    nick: "alice",
    channels: new Map([["#chat", members]]),
    isSynced: (c) => c.toLowerCase() === "#chat" && (f.synced ?? true),
    channel: (c) => (c.toLowerCase() === "#chat" ? chat : undefined),
    ircChannels: () => [["#chat", chat]],
    support: DEFAULT_SUPPORT,
    mentionsOnly: () => f.mentionsOnly ?? false,
    awaitsCommand: () => f.awaitsCommand ?? false,
    outageNoticeSent: f.outageNoticeSent ?? false,
    before: f.before,
    nickJid: (nick) => `${nick.toLowerCase()}%${SERVER}@irc.example.org`,
    newId: () => `irc-id${++ids}`,
  };
}

const all = (s: SessionState, line: string): Change[] => {
  const m = parseLine(line);
  if (!m) throw new Error(`not a line: ${line}`);
  return handle(s, m);
};
/** What the user's resources are shown: delivered events, channel lines (archived first), a room shown. */
const delivers = (c: Change): boolean =>
  c.kind === "deliver" || c.kind === "archive" || c.kind === "roomShown";
/** The changes of a line, without the reply offered to the user's own commands (see "replies"). */
const on = (s: SessionState, line: string): Change[] => all(s, line).filter((c) => c.kind !== "reply");
const events = (changes: Change[]): InboundEvent[] =>
  changes.flatMap((c) =>
    c.kind === "deliver" || c.kind === "archive" || c.kind === "roomShown" ? c.events : [],
  );
const others = (changes: Change[]) => changes.filter((c) => !delivers(c));

describe("channel text", () => {
  it("shows a message from room/nick with mIRC bold as XEP-0393, an action as /me, a notice as text", () => {
    const s = state();
    expect(
      [
        ":bob!u@h PRIVMSG #chat :\x02hi\x02 all",
        ":bob!u@h PRIVMSG #chat :\x01ACTION waves\x01",
        ":bob!u@h NOTICE #chat :a notice",
      ].flatMap((l) => events(on(s, l))),
    ).toMatchObject([
      { kind: "message", to: PHONE, from: `${ROOM}/bob`, type: "groupchat", body: "*hi* all" },
      { from: `${ROOM}/bob`, body: "/me waves" },
      { from: `${ROOM}/bob`, body: "a notice" },
    ]);
  });

  it("gives each joined resource the line, with the IRCv3 msgid as id and server-time as delay", () => {
    const changes = on(
      state({ resources: [PHONE, LAPTOP] }),
      "@msgid=m1;time=2026-01-02T03:04:05.000Z :bob!u@h PRIVMSG #chat :hi",
    );
    expect(events(changes)).toMatchObject([
      { to: PHONE, id: "irc-m1", delay: "2026-01-02T03:04:05.000Z" },
      { to: LAPTOP, id: "irc-m1", delay: "2026-01-02T03:04:05.000Z" },
    ]);
  });

  it("shows nothing of a channel before its NAMES list arrived", () => {
    expect(on(state({ synced: false }), ":bob!u@h PRIVMSG #chat :early")).toEqual([]);
  });

  it("forwards only lines mentioning the user's nick when the channel is set so (the archive keeps all)", () => {
    const s = state({ mentionsOnly: true });
    expect(on(s, ":bob!u@h PRIVMSG #chat :unrelated")).toEqual([
      { kind: "archive", channel: "#chat", line: { nick: "bob", body: "unrelated" }, events: [] },
    ]);
    expect(events(on(s, ":bob!u@h PRIVMSG #chat :Alice: look"))).toHaveLength(1);
  });

  it("takes our own line coming back (echo-message) as the echo, not as a new message", () => {
    expect(on(state(), "@msgid=m1 :alice!u@h PRIVMSG #chat :mine")).toEqual([
      { kind: "echoed", channel: "#chat", line: { nick: "alice", body: "mine", msgid: "m1" } },
    ]);
  });

  it("refuses our line's echo on ERR_CANNOTSENDTOCHAN, with the server's text", () => {
    expect(on(state(), ":irc.example.net 404 alice #chat :Cannot send to channel")).toEqual([
      {
        kind: "echoRefused",
        channel: "#chat",
        text: `${SERVER} refused the message in #chat: Cannot send to channel.`,
      },
    ]);
  });

  it("shows a server's notice to the user from the server JID, not in a room", () => {
    expect(on(state(), ":irc.example.net NOTICE alice :*** Looking up \x02your\x02 hostname")).toEqual([
      { kind: "serverNotice", text: "*** Looking up *your* hostname" },
    ]);
    expect(on(state(), ":irc.example.net NOTICE #chat :to the channel")).toEqual([]);
    expect(on(state(), ":irc.example.net NOTICE alice :\x01VERSION x\x01")).toEqual([]);
  });
});

describe("private messages", () => {
  it("shows one from the nick's own JID to the bare JID, and keeps the connection open", () => {
    const changes = on(state(), ":Bob!u@h PRIVMSG alice :psst");
    expect(others(changes)).toEqual([{ kind: "conversation" }]);
    expect(events(changes)).toMatchObject([
      {
        kind: "message",
        to: "alice@example.org",
        from: `bob%${SERVER}@irc.example.org`,
        type: "chat",
        body: "psst",
      },
    ]);
  });
});

describe("CTCP", () => {
  it("answers VERSION and PING queries; to a channel, with the channel to claim", () => {
    expect(on(state(), ":bob!u@h PRIVMSG alice :\x01VERSION\x01")).toEqual([
      { kind: "ctcp", to: "bob", reply: `VERSION ${CTCP_VERSION}` },
    ]);
    expect(on(state(), ":bob!u@h PRIVMSG #chat :\x01PING 123\x01")).toEqual([
      { kind: "ctcp", to: "bob", reply: "PING 123", channel: "#chat" },
    ]);
  });

  it("answers no CTCP reply (a NOTICE), no unknown query, no query of our own", () => {
    const s = state();
    expect(on(s, ":bob!u@h NOTICE alice :\x01VERSION other\x01")).toEqual([]);
    expect(on(s, ":bob!u@h PRIVMSG alice :\x01FINGER\x01")).toEqual([]);
    expect(on(s, ":alice!u@h PRIVMSG #chat :\x01VERSION\x01")).toEqual([]);
  });
});

describe("occupants", () => {
  it("adds a joining nick and shows it", () => {
    const changes = on(state(), ":dave!u@h JOIN #chat");
    expect(others(changes)).toEqual([{ kind: "user", channel: "#chat", nick: "dave", prefixes: "" }]);
    expect(events(changes)).toMatchObject([
      { kind: "presence", from: `${ROOM}/dave`, muc: { role: "participant" } },
    ]);
  });

  it("starts the channel over when the user's own JOIN comes back", () => {
    expect(on(state(), ":alice!u@h JOIN #chat")).toEqual([{ kind: "joined", channel: "#chat" }]);
  });

  it("reports parts and quits with the reason, without mIRC colours", () => {
    const s = state();
    const part = on(s, ":carol!u@h PART #chat :\x0312blue\x03 bye");
    expect(events(part)).toMatchObject([{ type: "unavailable", from: `${ROOM}/carol`, status: "blue bye" }]);
    expect(others(part)).toEqual([{ kind: "userGone", channel: "#chat", nick: "carol" }]);
    const quit = on(s, ":bob!u@h QUIT :\x0304,01gone\x0f home");
    expect(events(quit)).toMatchObject([{ type: "unavailable", from: `${ROOM}/bob`, status: "gone home" }]);
    expect(others(quit)).toEqual([{ kind: "quit", nick: "bob" }]);
  });

  it("reports a kick of another with 307, the kicker and the reason", () => {
    const changes = on(state(), ":bob!u@h KICK #chat carol :\x0304spam\x03");
    expect(events(changes)).toMatchObject([
      {
        type: "unavailable",
        from: `${ROOM}/carol`,
        status: "Kicked by bob: spam",
        muc: { statusCodes: [307], actor: "bob", reason: "spam" },
      },
    ]);
    expect(others(changes)).toEqual([{ kind: "userGone", channel: "#chat", nick: "carol" }]);
  });

  it("reports a kick of the user with 307 and 110, and forgets the channel", () => {
    const changes = on(state(), ":bob!u@h KICK #chat alice :spam");
    expect(events(changes)).toMatchObject([
      {
        type: "unavailable",
        from: `${ROOM}/alice`,
        muc: { statusCodes: [307, 110], actor: "bob", reason: "spam" },
      },
    ]);
    expect(others(changes)).toEqual([{ kind: "forget", channel: "#chat" }]);
  });

  it("reports a nick change of a user without prefix (303), keeping its role", () => {
    const changes = on(state(), ":carol!u@h NICK carol2");
    expect(events(changes)).toMatchObject([
      { type: "unavailable", from: `${ROOM}/carol`, muc: { nick: "carol2", statusCodes: [303] } },
      { from: `${ROOM}/carol2`, muc: { role: "participant" } },
    ]);
    expect(others(changes)).toEqual([{ kind: "renamed", from: "carol", to: "carol2", self: false }]);
  });

  it("reports the user's own nick change with 110", () => {
    const changes = on(state(), ":alice!u@h NICK alice_");
    expect(events(changes)[0]).toMatchObject({ muc: { statusCodes: [303, 110] } });
    expect(others(changes)).toEqual([{ kind: "renamed", from: "alice", to: "alice_", self: true }]);
  });

  it("shows +o and -v on a nick as its new role; +m makes voiceless occupants visitors", () => {
    const s = state({ users: { alice: "", bob: "@", carol: "+" } });
    expect(events(on(s, ":bob!u@h MODE #chat +o-v carol carol"))).toMatchObject([
      { from: `${ROOM}/carol`, muc: { role: "moderator" } },
      { from: `${ROOM}/carol`, muc: { role: "moderator" } },
    ]);
    const moderated = on(s, ":bob!u@h MODE #chat +m");
    expect(others(moderated)).toEqual([{ kind: "moderated", channel: "#chat", moderated: true }]);
    expect(events(moderated).map((e) => [e.from, e.kind === "presence" ? e.muc?.role : ""])).toEqual([
      [`${ROOM}/alice`, "visitor"],
      [`${ROOM}/bob`, "moderator"],
      [`${ROOM}/carol`, "participant"],
    ]);
    expect(events(moderated)[0]).toMatchObject({ muc: { statusCodes: [110] } });
  });

  it("reads a key or ban mode's parameter without taking it for a nick", () => {
    expect(on(state(), ":bob!u@h MODE #chat +kb carol carol!*@*")).toEqual([]);
  });

  it("shows an occupant going away and coming back (away-notify)", () => {
    const s = state();
    expect(events(on(s, ":bob!u@h AWAY :lunch"))).toMatchObject([
      { from: `${ROOM}/bob`, show: "away", status: "lunch" },
    ]);
    const back = events(on(s, ":bob!u@h AWAY"));
    expect(back).toHaveLength(1);
    expect(back[0]).not.toHaveProperty("show");
  });
});

describe("topic", () => {
  it("shows a topic change from room/nick without mIRC codes", () => {
    const changes = on(state(), ":bob!u@h TOPIC #chat :\x0304red\x03 and \x02bold\x02");
    expect(events(changes)).toMatchObject([
      { kind: "message", from: `${ROOM}/bob`, subject: "red and *bold*", body: "" },
    ]);
    expect(others(changes)).toEqual([
      { kind: "topic", channel: "#chat", topic: "\x0304red\x03 and \x02bold\x02" },
    ]);
  });

  it("archives channel lines and topic changes once the channel is shown, not before (channel history)", () => {
    const archive = (changes: Change[]) => changes.filter((c) => c.kind === "archive");
    expect(archive(on(state(), ":bob!u@h TOPIC #chat :\x02new\x02"))).toMatchObject([
      { channel: "#chat", line: { nick: "bob", body: "", subject: "*new*" } },
    ]);
    expect(archive(on(state(), "@msgid=x7 :bob!u@h PRIVMSG #chat :\x01ACTION waves\x01"))).toMatchObject([
      { channel: "#chat", line: { nick: "bob", body: "/me waves", msgid: "x7" } },
    ]);
    const joining = state({ synced: false });
    expect(on(joining, ":bob!u@h PRIVMSG #chat :early")).toEqual([]);
    expect(on(joining, ":alice!u@h PRIVMSG #chat :mine")).toEqual([{ kind: "echoed", channel: "#chat" }]);
  });

  it("answers the user's own TOPIC command with its echo", () => {
    expect(others(on(state(), ":alice!u@h TOPIC #chat :new"))).toContainEqual({
      kind: "commandEchoed",
      channel: "#chat",
      command: "TOPIC",
    });
  });
});

describe("joining", () => {
  it("reads NAMES with the server's prefixes", () => {
    expect(on(state(), ":irc.example.net 353 alice = #chat :alice @bob +carol")).toEqual([
      { kind: "user", channel: "#chat", nick: "alice", prefixes: "" },
      { kind: "user", channel: "#chat", nick: "bob", prefixes: "@" },
      { kind: "user", channel: "#chat", nick: "carol", prefixes: "+" },
    ]);
  });

  it("turns the end of NAMES into occupants, then the user's own presence with 110, then the topic", () => {
    const changes = on(
      state({ synced: false, topic: "\x0304Be\x03 nice" }),
      ":irc.example.net 366 alice #chat :End of NAMES list",
    );
    expect(events(changes).map((e) => [e.kind, e.from])).toEqual([
      ["presence", `${ROOM}/bob`],
      ["presence", `${ROOM}/carol`],
      ["presence", `${ROOM}/alice`],
      ["message", ROOM],
    ]);
    expect(events(changes)[0]).toMatchObject({ to: PHONE, muc: { role: "moderator", affiliation: "admin" } });
    expect(events(changes)[2]).toMatchObject({ muc: { statusCodes: [110] } });
    expect(events(changes)[3]).toMatchObject({ type: "groupchat", body: "", subject: "Be nice" });
    expect(others(changes)).toEqual([{ kind: "synced", channel: "#chat" }]);
  });

  it("after a redial, shows who left meanwhile and says the user is back", () => {
    const changes = on(
      state({
        synced: false,
        outageNoticeSent: true,
        before: { nick: "alice", occupants: new Map([["#chat", ["alice", "bob", "carol", "dave"]]]) },
      }),
      ":irc.example.net 366 alice #chat :End of NAMES list",
    );
    const shown = events(changes);
    expect(shown[0]).toMatchObject({ type: "unavailable", from: `${ROOM}/dave` });
    expect(shown.at(-1)).toMatchObject({
      from: ROOM,
      body: `Connected to ${SERVER} again; you are back in #chat.`,
    });
  });

  it("turns a refused JOIN into a MUC presence error and forgets the channel", () => {
    const changes = on(
      state({ synced: false }),
      ":irc.example.net 474 alice #chat :Cannot join channel (+b)",
    );
    expect(events(changes)).toMatchObject([
      {
        kind: "presence",
        to: PHONE,
        from: `${ROOM}/alice`,
        type: "error",
        error: { condition: "forbidden" },
      },
    ]);
    expect(others(changes)).toEqual([{ kind: "forget", channel: "#chat" }]);
  });

  it("takes a refusal in a joined channel for the user's pending command, with the server's text", () => {
    expect(
      on(state({ awaitsCommand: true }), ":irc.example.net 482 alice #chat :You're not channel operator"),
    ).toEqual([
      { kind: "commandRefused", channel: "#chat", numeric: "482", text: "You're not channel operator" },
    ]);
    // Nothing waits: a stray refusal in a joined channel changes nothing.
    expect(on(state(), ":irc.example.net 482 alice #chat :You're not channel operator")).toEqual([]);
  });

  it("gives a resource joining a synced channel its occupants and topic", () => {
    expect(rosterEvents(state({ topic: "hi" }), "#chat", PHONE).map((e) => e.from)).toEqual([
      `${ROOM}/bob`,
      `${ROOM}/carol`,
      `${ROOM}/alice`,
      ROOM,
    ]);
  });
});

describe("server lines without a handler", () => {
  it("change nothing", () => {
    expect(on(state(), ":irc.example.net 251 alice :There are 3 users")).toEqual([]);
    expect(on(state(), ":irc.example.net 001")).toEqual([]);
  });
});

describe("replies to the user's own commands", () => {
  const reply = (line: string) => all(state(), line).filter((c) => c.kind === "reply");
  it("are every numeric and the user's own NICK and user MODE, after the line's other changes", () => {
    const line = ":irc.example.net 251 alice :There are 3 users";
    expect(all(state(), line)).toEqual([{ kind: "reply", message: parseLine(line) }]);
    expect(all(state(), ":irc.example.net 366 alice #chat :End").at(-1)?.kind).toBe("reply");
    expect(reply(":alice!u@h NICK alicia")).toHaveLength(1);
    expect(reply(":alice!u@h MODE alice :+i")).toHaveLength(1);
  });

  it("leave out other users' lines and channel lines", () => {
    expect(reply(":bob!u@h NICK robert")).toEqual([]);
    expect(reply(":bob!u@h MODE #chat +o carol")).toEqual([]);
    expect(reply(":bob!u@h PRIVMSG alice :hi")).toEqual([]);
    expect(reply(":irc.example.net NOTICE alice :hello")).toEqual([]);
  });
});
