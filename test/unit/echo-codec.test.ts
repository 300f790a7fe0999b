import { describe, expect, it } from "vitest";
import { echoCodec } from "../../adapters/echo/codec.js";
import { GatewayError } from "../../src/xmpp/errors.js";

describe("echo id codec", () => {
  it.each([
    ["bot", "bot"],
    ["my\\20bot", "my bot"],
    ["friend\\40example.com", "friend@example.com"],
    ["c\\3a\\5cnet", "c:\\net"],
  ])("decodes the localpart %s to %s", (local, id) => {
    expect(echoCodec.decode(local)).toBe(id);
    expect(echoCodec.encode(id)).toBe(local);
  });

  it.each([
    ["", "jid-malformed"],
    ["x".repeat(65), "jid-malformed"],
    ["a\u0007b", "jid-malformed"],
  ])("refuses %j with %s", (local, condition) => {
    expect(() => echoCodec.decode(local)).toThrow(GatewayError);
    try {
      echoCodec.decode(local);
    } catch (err) {
      expect((err as GatewayError).condition).toBe(condition);
      expect((err as GatewayError).message.length).toBeGreaterThan(10);
    }
  });

  it("normalises a prompt by trimming it", () => {
    expect(echoCodec.fromPrompt("  my bot \n")).toBe("my bot");
    expect(() => echoCodec.fromPrompt("   ")).toThrow(GatewayError);
  });
});
