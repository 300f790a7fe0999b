import { describe, expect, it } from "vitest";
import { PendingCommands } from "./pending.js";

describe("a channel command waiting for the server's answer", () => {
  it("is refused by a refusal numeric for its channel, with the server's text", async () => {
    const pending = new PendingCommands();
    const { answer } = pending.expect("#Chat", "TOPIC");
    expect(pending.refused("#other", "482", "You're not channel operator")).toBe(false);
    expect(pending.refused("#chat", "482", "You're not channel operator")).toBe(true);
    expect(await answer).toEqual({ condition: "forbidden", serverText: "You're not channel operator" });
  });

  it("is taken once echoed; numerics that refuse no command leave it alone", async () => {
    const pending = new PendingCommands();
    const { answer } = pending.expect("#chat", "TOPIC");
    expect(pending.refused("#chat", "404", "Cannot send")).toBe(false);
    pending.echoed("#CHAT", "TOPIC");
    expect(await answer).toBeNull();
    expect(pending.refused("#chat", "482", "late")).toBe(false);
  });

  it("counts as taken when the server says nothing in time, or when it was never written", async () => {
    const pending = new PendingCommands(10);
    expect(await pending.expect("#chat", "TOPIC").answer).toBeNull();
    const { answer, cancel } = pending.expect("#chat", "TOPIC");
    cancel();
    expect(await answer).toBeNull();
    expect(pending.refused("#chat", "482", "x")).toBe(false);
  });
});
