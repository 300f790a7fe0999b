/**
 * Server notices and the MOTD as the session reads them: each line through the handler table (handlers.ts),
 * its changes applied to the connection's ServerMessages, as IrcSession does.
 */
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import { handle, type SessionState } from "./handlers.js";
import { parseLine } from "./message.js";
import { DEFAULT_SUPPORT } from "./roster.js";
import { MAX_HELD_NOTICES, NOTICE_BURST, ServerMessages } from "./server-messages.js";

const SERVER = "irc.example.net";

/** Alice's connection, in no channel, as a handler sees it. */
const state: SessionState = {
  user: "alice@example.org",
  server: SERVER,
  nick: "alice",
  channels: new Map(),
  isSynced: () => false,
  channel: () => undefined,
  ircChannels: () => [],
  support: DEFAULT_SUPPORT,
  mentionsOnly: () => false,
  awaitsCommand: () => false,
  outageNoticeSent: false,
  before: undefined,
  nickJid: (nick) => `${nick.toLowerCase()}%${SERVER}@irc.example.org`,
  newId: () => "irc-id",
};

/** A connection's server messages (`restoring`: a redial), fed one server line at a time. */
function connection(restoring = false) {
  const bodies: string[] = [];
  const log = pino({ level: "silent" });
  const messages = new ServerMessages(SERVER, restoring, log, (body) => bodies.push(body));
  const line = (l: string) => {
    const m = parseLine(l);
    if (!m) throw new Error(`not a line: ${l}`);
    for (const change of handle(state, m))
      if (change.kind === "serverNotice" || change.kind === "motd") messages.apply(change);
  };
  return { messages, bodies, line };
}

describe("server messages", () => {
  it("shows the notices sent while connecting and the MOTD as one message from the server JID", async () => {
    const { messages, bodies, line } = connection();
    line(":irc.example.net NOTICE * :*** Looking up your hostname");
    line(":irc.example.net 001 alice :Welcome");
    line(":irc.example.net 375 alice :- irc.example.net Message of the day -");
    line(":irc.example.net 372 alice :- Be \x02nice\x02.");
    line(":irc.example.net 372 alice :- Second line");
    expect(bodies).toEqual([]);
    line(":irc.example.net 376 alice :End of MOTD command");
    await messages.welcomed(10_000);
    expect(bodies).toEqual([
      "Notices from irc.example.net:\n*** Looking up your hostname\n\n" +
        "Message of the day of irc.example.net:\nBe *nice*.\nSecond line",
    ]);
    // A later MOTD answers the user's own MOTD command (the console): not shown here.
    line(":irc.example.net 375 alice :- irc.example.net Message of the day -");
    line(":irc.example.net 376 alice :End of MOTD command");
    expect(bodies).toHaveLength(1);
  });

  it("holds a bounded number of early notices, and shows later ones within a rate", () => {
    const { bodies, line } = connection();
    for (let i = 0; i < MAX_HELD_NOTICES + 3; i++) line(`:irc.example.net NOTICE * :early ${i}`);
    line(":irc.example.net 422 alice :MOTD File is missing");
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain(`early ${MAX_HELD_NOTICES - 1}`);
    expect(bodies[0]).not.toContain(`early ${MAX_HELD_NOTICES}\n`);
    expect(bodies[0]).toContain("(3 more notices left out)");
    for (let i = 0; i < NOTICE_BURST + 4; i++) line(`:irc.example.net NOTICE alice :later ${i}`);
    expect(bodies.slice(1)).toEqual(
      [...Array(NOTICE_BURST).keys()].map((i) => `irc.example.net: later ${i}`),
    );
    // Notices from nicks (NickServ…) and to channels are not the server's own.
    line(":NickServ!services@services.example.net NOTICE alice :This nick is registered");
    line(":irc.example.net NOTICE #chan :to the channel");
    expect(bodies).toHaveLength(1 + NOTICE_BURST);
  });

  it("shows no MOTD again on a redialed connection", () => {
    const { bodies, line } = connection(true);
    line(":irc.example.net 375 alice :- motd -");
    line(":irc.example.net 372 alice :- hello");
    line(":irc.example.net 376 alice :End");
    expect(bodies).toEqual([]);
  });
});
