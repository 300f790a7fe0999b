/** Redial pacing: exponential backoff with jitter, capped, and connections to one server spread out. */
import { describe, expect, it } from "vitest";
import { backoffMs, CONNECT_STAGGER_MS, RECONNECT_BASE_MS, Stagger } from "./reconnect.js";

describe("backoffMs", () => {
  it("doubles with each attempt, between half and all of the ceiling", () => {
    for (const attempt of [0, 1, 2, 3, 4]) {
      const ceiling = RECONNECT_BASE_MS * 2 ** attempt;
      expect(backoffMs(attempt, 300, () => 0)).toBe(ceiling / 2);
      expect(backoffMs(attempt, 300, () => 1)).toBe(ceiling);
    }
  });

  it("never waits longer than the configured maximum, however many attempts failed", () => {
    expect(backoffMs(50, 300, () => 1)).toBe(300_000);
    expect(backoffMs(1000, 2, () => 0.5)).toBe(1500);
  });

  it("spreads connections lost together (jitter)", () => {
    const waits = new Set(Array.from({ length: 20 }, () => backoffMs(5, 300)));
    expect(waits.size).toBeGreaterThan(1);
  });
});

describe("Stagger", () => {
  it("starts connections to one server at least the stagger gap apart, other servers independently", () => {
    const stagger = new Stagger();
    const now = 1_000_000;
    expect([0, 1, 2].map(() => stagger.delay("a.example", 0, now))).toEqual([
      0,
      CONNECT_STAGGER_MS,
      2 * CONNECT_STAGGER_MS,
    ]);
    expect(stagger.delay("b.example", 0, now)).toBe(0);
    // A later backoff is kept when it is beyond the next free slot.
    expect(stagger.delay("a.example", 5000, now)).toBe(5000);
  });
});
