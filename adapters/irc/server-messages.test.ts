import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { pino } from "pino";
import type { InboundEvent } from "../../src/adapter.js";
import type { IrcSession } from "./session.js";
import { parseServerLine } from "./ircv3.js";
import { attachServerMessages, MAX_HELD_NOTICES, NOTICE_BURST, welcomeDone } from "./server-messages.js";

/** A session as server-messages.ts sees it: the client's events, the user and the server. */
function fakeSession(restoring = false) {
  const client = new EventEmitter();
  const session = { client, user: "alice@example.org", server: "irc.example.net", restoring };
  const bodies: string[] = [];
  attachServerMessages(session as unknown as IrcSession, {
    log: pino({ level: "silent" }),
    emit: (_s, events: InboundEvent[]) => {
      for (const e of events) if (e.kind === "message") bodies.push(`${e.from} ${e.body}`);
    },
    serverJid: (server) => `${server}@irc.example.org`,
  });
  const line = (l: string) => client.emit("raw", parseServerLine(l));
  return { session, bodies, line };
}

describe("server messages", () => {
  it("shows the notices sent while connecting and the MOTD as one message from the server JID", async () => {
    const { session, bodies, line } = fakeSession();
    line(":irc.example.net NOTICE * :*** Looking up your hostname");
    line(":irc.example.net 001 alice :Welcome");
    line(":irc.example.net 375 alice :- irc.example.net Message of the day -");
    line(":irc.example.net 372 alice :- Be \x02nice\x02.");
    line(":irc.example.net 372 alice :- Second line");
    expect(bodies).toEqual([]);
    line(":irc.example.net 376 alice :End of MOTD command");
    await welcomeDone(session as unknown as IrcSession, 1_000);
    expect(bodies).toEqual([
      "irc.example.net@irc.example.org Notices from irc.example.net:\n*** Looking up your hostname\n\n" +
        "Message of the day of irc.example.net:\nBe *nice*.\nSecond line",
    ]);
    // A later MOTD answers the user's own MOTD command (the console): not shown here.
    line(":irc.example.net 375 alice :- irc.example.net Message of the day -");
    line(":irc.example.net 376 alice :End of MOTD command");
    expect(bodies).toHaveLength(1);
  });

  it("holds a bounded number of early notices, and shows later ones within a rate", () => {
    const { bodies, line } = fakeSession();
    for (let i = 0; i < MAX_HELD_NOTICES + 3; i++) line(`:irc.example.net NOTICE * :early ${i}`);
    line(":irc.example.net 422 alice :MOTD File is missing");
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).toContain(`early ${MAX_HELD_NOTICES - 1}`);
    expect(bodies[0]).not.toContain(`early ${MAX_HELD_NOTICES}\n`);
    expect(bodies[0]).toContain("(3 more notices left out)");
    for (let i = 0; i < NOTICE_BURST + 4; i++) line(`:irc.example.net NOTICE alice :later ${i}`);
    expect(bodies.slice(1)).toEqual(
      [...Array(NOTICE_BURST).keys()].map(
        (i) => `irc.example.net@irc.example.org irc.example.net: later ${i}`,
      ),
    );
    // Notices from nicks (NickServ…) and to channels are not the server's own: inbound.ts has them.
    line(":NickServ!services@services.example.net NOTICE alice :This nick is registered");
    line(":irc.example.net NOTICE #chan :to the channel");
    expect(bodies).toHaveLength(1 + NOTICE_BURST);
  });

  it("shows no MOTD again on a redialed connection", () => {
    const { bodies, line } = fakeSession(true);
    line(":irc.example.net 375 alice :- motd -");
    line(":irc.example.net 372 alice :- hello");
    line(":irc.example.net 376 alice :End");
    expect(bodies).toEqual([]);
  });
});
