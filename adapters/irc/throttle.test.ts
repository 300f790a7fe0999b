/** The flood-control bucket: a burst at once, then one line per interval, in order. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { TokenBucket } from "./throttle.js";

describe("TokenBucket", () => {
  afterEach(() => vi.useRealTimers());

  it("lets a burst through at once, then one line per interval, in the order asked", async () => {
    vi.useFakeTimers();
    const bucket = new TokenBucket(3, 1000, () => Date.now());
    const sent: number[] = [];
    const lines = [0, 1, 2, 3, 4].map((n) => bucket.wait().then(() => sent.push(n)));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([0, 1, 2, 3]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    await Promise.all(lines);
  });

  it("refills while idle, never beyond the burst", async () => {
    vi.useFakeTimers();
    const bucket = new TokenBucket(2, 1000, () => Date.now());
    await bucket.wait();
    await bucket.wait();
    await vi.advanceTimersByTimeAsync(10_000);
    const sent: number[] = [];
    void bucket.wait().then(() => sent.push(1));
    void bucket.wait().then(() => sent.push(2));
    void bucket.wait().then(() => sent.push(3));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toEqual([1, 2]);
  });

  it("counts the lines waiting for a token, not those that got one at once", async () => {
    vi.useFakeTimers();
    const bucket = new TokenBucket(2, 1000, () => Date.now());
    const lines = [0, 1, 2, 3, 4].map(() => bucket.wait());
    expect(bucket.waiting).toBe(3);
    await vi.advanceTimersByTimeAsync(0);
    expect(bucket.waiting).toBe(3);
    await vi.advanceTimersByTimeAsync(3000);
    expect(bucket.waiting).toBe(0);
    await Promise.all(lines);
  });

  it("does not throttle with an interval of 0: a burst asked in one go waits for nothing", async () => {
    const bucket = new TokenBucket(1, 0);
    const lines = Array.from({ length: 500 }, () => bucket.wait());
    expect(bucket.waiting).toBe(0);
    await Promise.all(lines);
  });
});
