/**
 * Flood control for one IRC connection: a token bucket. A burst of `burst` lines goes out at once, then one
 * line every `intervalMs`, which is what IRC servers tolerate without an "Excess Flood" kill (biboumi: 10
 * then 1/s). Lines wait their turn in order; none is dropped.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  /** The line before this one got its token: lines leave in the order they were queued. */
  private queue: Promise<void> = Promise.resolve();
  /** Lines that asked for a token and did not get it yet. */
  private pending = 0;

  constructor(
    private readonly burst: number,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Milliseconds until the next token, taking it now if there is one (0). */
  private take(): number {
    if (this.intervalMs <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.intervalMs);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - this.tokens) * this.intervalMs);
  }

  /** Lines waiting for their token now. */
  get waiting(): number {
    return this.pending;
  }

  /**
   * Resolves when the caller may send one line. A line that gets its token at once (nobody ahead of it) does
   * not count as waiting: a burst of lines handled in one turn of the event loop, each with its token, is not
   * a queue, and must not be refused as one by the bound on waiting lines.
   */
  wait(): Promise<void> {
    if (this.pending === 0 && this.take() === 0) return Promise.resolve();
    this.pending += 1;
    const turn = this.queue.then(async () => {
      for (let wait = this.take(); wait > 0; wait = this.take())
        await new Promise((resolve) => setTimeout(resolve, wait));
      this.pending -= 1;
    });
    this.queue = turn;
    return turn;
  }
}
