import { describe, expect, it } from "vitest";
import { backoffDelay, RECONNECT_BASE_MS } from "../../src/xmpp/link.js";

describe("reconnect backoff", () => {
  const cap = 30_000;
  it.each([
    [0, RECONNECT_BASE_MS],
    [1, 2 * RECONNECT_BASE_MS],
    [3, 8 * RECONNECT_BASE_MS],
    [10, cap],
    [1000, cap],
  ])("attempt %i waits between half and all of %i ms", (attempt, full) => {
    expect(backoffDelay(attempt, cap, () => 0)).toBe(full / 2);
    expect(backoffDelay(attempt, cap, () => 1)).toBe(full);
  });

  it("spreads reconnects of many instances (jitter)", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(5, cap)));
    expect(delays.size).toBeGreaterThan(10);
  });
});
