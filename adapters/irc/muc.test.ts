import { describe, expect, it } from "vitest";
import { FALLBACK_NICK, joinError, nickFromText, occupantOf } from "./muc.js";
import { joinEvents, STATUS } from "./events.js";

describe("IRC prefixes as XEP-0045 occupants", () => {
  it.each([
    ["", "none", "participant"],
    ["+", "none", "participant"],
    ["@", "admin", "moderator"],
    ["@+", "admin", "moderator"],
    ["+@", "admin", "moderator"],
    ["%", "member", "moderator"],
    ["~@", "owner", "moderator"],
    ["&", "admin", "moderator"],
  ])("%j → %s/%s", (prefixes, affiliation, role) => {
    expect(occupantOf(prefixes)).toEqual({ affiliation, role });
  });
});

describe("IRC join refusals as MUC presence errors", () => {
  it.each([
    ["474", "forbidden", "banned"],
    ["473", "registration-required", "invite-only"],
    ["475", "not-authorized", "key"],
    ["471", "service-unavailable", "full"],
  ])("%s → %s", (command, condition, why) => {
    const error = joinError(command, "#chat", "irc.example.net");
    expect(error?.condition).toBe(condition);
    expect(error?.text).toContain("#chat");
    expect(error?.text).toContain(why);
  });

  it("ignores numerics that are not about joining", () => {
    expect(joinError("401", "#chat", "irc.example.net")).toBeNull();
  });
});

describe("IRC nick from a JID localpart", () => {
  it.each([
    ["alice", "alice"],
    ["alice.smith", "alicesmith"],
    ["42bob", "bob"],
    ["-_x", "_x"],
    ["élise", "lise"],
    ["...", FALLBACK_NICK],
    ["a".repeat(40), "a".repeat(30)],
  ])("%s → %s", (localpart, nick) => {
    expect(nickFromText(localpart)).toBe(nick);
  });
});

describe("joining a channel as the user sees it", () => {
  const base = {
    to: "u@example.org/phone",
    roomJid: "#chat%irc.example.net@irc.example.org",
    own: { affiliation: "none" as const, role: "participant" as const },
    others: [["bob", { affiliation: "admin" as const, role: "moderator" as const }]] as [string, never][],
    topic: "Welcome",
    id: "t1",
  };

  it("shows the others, then the user's own presence with 110, then the subject", () => {
    const events = joinEvents({ ...base, ownNick: "alice", requestedNick: "alice" });
    expect(events.map((e) => e.from)).toEqual([`${base.roomJid}/bob`, `${base.roomJid}/alice`, base.roomJid]);
    expect(events[1]).toMatchObject({ kind: "presence", muc: { statusCodes: [STATUS.SELF] } });
    expect(events[2]).toMatchObject({ kind: "message", type: "groupchat", body: "", subject: "Welcome" });
  });

  it("adds 210 when the IRC nick is not the one asked for", () => {
    const events = joinEvents({ ...base, ownNick: "alice_", requestedNick: "alice" });
    expect(events[1]).toMatchObject({
      from: `${base.roomJid}/alice_`,
      muc: { statusCodes: [STATUS.SELF, STATUS.NICK_MODIFIED] },
    });
  });
});
