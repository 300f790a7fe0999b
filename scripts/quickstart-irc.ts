/**
 * The quickstart's IRC check: alice joins #test on the local IRC server as a chat room, talks with a plain
 * IRC client both ways, and stays in the room while the IRC server restarts.
 */
import { xml, type Client, type Element } from "@xmpp/client";
import type { Bed } from "../test/bed/index.js";
import { RawIrc } from "../test/support/raw-irc.js";

const MUC = "http://jabber.org/protocol/muc";
const MUC_USER = "http://jabber.org/protocol/muc#user";
/** The IRC server name the quickstart's config allows (the bed's ngircd calls itself so). */
export const QUICKSTART_IRC_SERVER = "irc.localhost";

type Check = (ok: boolean, what: string) => void;

const waitFor = async (what: () => boolean, ms = 30_000): Promise<boolean> => {
  for (let i = 0; i < ms / 50 && !what(); i++) await new Promise((r) => setTimeout(r, 50));
  return what();
};

export async function smokeIrc(
  xmpp: Client,
  inbox: Element[],
  check: Check,
  bed: Bed,
  domain: string,
): Promise<void> {
  const room = `#test%${QUICKSTART_IRC_SERVER}@${domain}`;
  const self = (el: Element) =>
    el.name === "presence" &&
    el.attrs.from === `${room}/alice` &&
    (el.getChild("x", MUC_USER)?.getChildren("status") ?? []).some((s) => s.attrs.code === "110");
  await xmpp.send(xml("presence", { to: `${room}/alice` }, xml("x", { xmlns: MUC })));
  check(await waitFor(() => inbox.some((el) => self(el) && el.attrs.type === undefined)), `joined ${room}`);
  const port = bed.irc!.port;
  let friend = await RawIrc.connect(port, "ircfriend");
  try {
    friend.send("JOIN #test");
    await friend.waitFor((l) => / 366 /.test(l));
    await xmpp.send(
      xml("message", { to: room, type: "groupchat", id: "qs-irc" }, xml("body", {}, "Hello IRC")),
    );
    check(
      await friend.waitFor((l) => l.endsWith("PRIVMSG #test :Hello IRC")).then(() => true),
      "a plain IRC client in #test got alice's message",
    );
    friend.send("PRIVMSG #test :Hello XMPP");
    check(
      await waitFor(() => inbox.some((el) => el.getChildText("body") === "Hello XMPP")),
      "alice got the IRC client's answer in the room",
    );
    const mark = inbox.length;
    friend.close();
    await bed.irc!.stop();
    await bed.irc!.start();
    friend = await RawIrc.connect(port, "ircfriend");
    friend.send("JOIN #test");
    // The gateway rejoins on its own: ask for the channel's names until alice is back in it.
    const aliceIn = async () => {
      for (let i = 0; i < 60; i++) {
        friend.lines.length = 0;
        friend.send("NAMES #test");
        const names = await friend.waitFor((l) => / 353 | 366 /.test(l));
        if (/ 353 /.test(names) && /[ :@+]alice( |$)/.test(names.slice(names.indexOf(" :")))) return true;
        await new Promise((r) => setTimeout(r, 500));
      }
      return false;
    };
    check(await aliceIn(), "after an IRC server restart the gateway joined #test again");
    check(
      !inbox.slice(mark).some((el) => el.attrs.from === `${room}/alice` && el.attrs.type === "unavailable"),
      "alice never left the room",
    );
    friend.send("PRIVMSG #test :Still there?");
    check(
      await waitFor(() => inbox.some((el) => el.getChildText("body") === "Still there?")),
      "messages reach alice again after the restart",
    );
  } finally {
    friend.close();
    await xmpp.send(xml("presence", { to: `${room}/alice`, type: "unavailable" })).catch(() => undefined);
  }
}
