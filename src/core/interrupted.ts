/**
 * Outbound sends cut short by a crash: the message may or may not have reached the network, so it is
 * neither repeated (never twice) nor forgotten (never silently lost). The sender gets an error for that
 * stanza id, which clients show on the message itself.
 */
import type { InFlight } from "../store/idempotency.js";
import { INSTANCE_LEASE_MS } from "../store/idempotency.js";
import type { ServiceContext } from "./context.js";

export function interruptedError(entry: InFlight) {
  const contact = entry.to.slice(0, entry.to.lastIndexOf("@"));
  return {
    kind: "error" as const,
    to: entry.from,
    from: entry.to,
    id: entry.id,
    // RFC 6120 §8.3.3.16: the remote end did not answer in time — the message's fate is unknown.
    condition: "remote-server-timeout" as const,
    text:
      `The gateway was interrupted while sending this message to ${contact}; it may or may not have ` +
      "arrived. Check with the recipient before sending it again.",
  };
}

/** Beats the instance's heartbeat and reports interrupted sends, at start and then periodically. */
export class InterruptedSends {
  private timer: NodeJS.Timeout | undefined;
  /** This process's own claims from before this moment were made by a previous run of the same instance. */
  private readonly startedAt = Date.now();

  constructor(private readonly svc: ServiceContext) {}

  async sweep(): Promise<void> {
    const { svc } = this;
    await svc.ledger.heartbeat();
    const taken = await svc.ledger.takeInterrupted(
      svc.key,
      async (entry) => {
        await svc.inbox.enqueue(svc.domain, interruptedError(entry), `interrupted:${entry.from}:${entry.id}`);
        svc.metrics.message(svc.key, "out", "interrupted");
      },
      { startedAt: this.startedAt },
    );
    if (taken > 0)
      svc.log.warn({ count: taken }, "senders told that interrupted messages may not have arrived");
  }

  start(): void {
    const run = () =>
      this.sweep().catch((err: unknown) =>
        this.svc.log.warn({ err: (err as Error).message }, "could not check for interrupted sends"),
      );
    void run();
    this.timer = setInterval(() => void run(), INSTANCE_LEASE_MS / 3);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
