import { describe, expect, it } from "vitest";
import { channelItems, itemName, listedChannel, sortChannels } from "./channel-list.js";

describe("channel lists", () => {
  it.each([
    [["me", "#chat", "12", "Welcome"], { name: "#chat", users: 12, topic: "Welcome" }],
    [["me", "#chat", "3"], { name: "#chat", users: 3, topic: "" }],
    // InspIRCd and UnrealIRCd put the modes before the topic.
    [["me", "#chat", "3", "[+nt] Welcome"], { name: "#chat", users: 3, topic: "Welcome" }],
    [["me", "#chat", "3", "[+ntl 10] Welcome"], { name: "#chat", users: 3, topic: "Welcome" }],
    [["me", "#chat", "many", "x"], null],
    [["me"], null],
  ])("reads RPL_LIST %j", (args, channel) => {
    expect(listedChannel(args)).toEqual(channel);
  });

  it("names items with the user count and the topic as plain text", () => {
    expect(itemName({ name: "#a", users: 1, topic: "" })).toBe("#a (1 user)");
    expect(itemName({ name: "#a", users: 2, topic: "\x0304red\x03 alert" })).toBe("#a (2 users): red alert");
  });

  it("puts the most used channels first, then by name, and leaves out names without a JID", () => {
    const list = sortChannels([
      { name: "#b", users: 1, topic: "" },
      { name: "#big", users: 40, topic: "" },
      { name: "#a", users: 1, topic: "" },
    ]);
    expect(list.map((c) => c.name)).toEqual(["#big", "#a", "#b"]);
    const items = channelItems({ channels: list, truncated: false }, (c) => (c === "#a" ? null : `${c}%s@d`));
    expect(items).toEqual([
      { jid: "#big%s@d", name: "#big (40 users)" },
      { jid: "#b%s@d", name: "#b (1 user)" },
    ]);
  });
});
