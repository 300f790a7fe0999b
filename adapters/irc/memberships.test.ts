/** A connection's channel memberships: resources in, JOIN requested, in sync, and the outage notice. */
import { describe, expect, it } from "vitest";
import { Memberships } from "./memberships.js";

const member = (roomJid: string) => ({ roomJid, requestedNick: "alice" });

describe("Memberships", () => {
  it("forgets a channel with its last resource, whatever the case of its name", () => {
    const m = new Memberships(undefined);
    m.add("#Chat", "a@x/1", member("#chat%irc@gw"));
    m.add("#chat", "a@x/2", member("#chat%irc@gw"));
    expect(m.request("#CHAT")).toBe(true);
    expect(m.request("#chat")).toBe(false);
    expect(m.remove("#chat", "a@x/1")).toBe(false);
    expect(m.isRequested("#chat")).toBe(true);
    expect(m.remove("#CHAT", "a@x/2")).toBe(true);
    expect(m.channels.size).toBe(0);
    expect(m.isRequested("#chat")).toBe(false);
  });

  it("keeps the outage noticed until every carried channel is in sync again", () => {
    const channels = new Map([
      ["#a", new Map([["a@x/1", member("#a%irc@gw")]])],
      ["#b", new Map([["a@x/1", member("#b%irc@gw")]])],
    ]);
    const m = new Memberships({ channels, before: undefined, outageNoticeSent: true });
    expect(m.requestAll()).toEqual(["#a", "#b"]);
    expect(m.isRequested("#b")).toBe(true);
    m.markSynced("#a");
    expect(m.outageNoticeSent).toBe(true);
    m.markSynced("#b");
    expect(m.outageNoticeSent).toBe(false);
    expect(m.isSynced("#B")).toBe(true);
  });
});
