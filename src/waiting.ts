/**
 * Bounded waits: at shutdown the gateway waits for work under way (sends in flight, acknowledgements, the
 * delivery loop), but never longer than its budget.
 */

/** Waits for `work` to settle (either way), at most `ms`; true when it did in time. No timer outlives it. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
