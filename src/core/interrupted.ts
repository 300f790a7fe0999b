/**
 * Outbound sends cut short by a crash. One still queued inside the gateway never reached the network: the
 * sender is told it was not sent, and the id is freed so a resend goes through. One already handed to the
 * network may or may not have arrived, so it is neither repeated (never twice) nor forgotten (never
 * silently lost): the sender gets an error for that stanza id, which clients show on the message itself.
 */
import type { InboundEvent } from "../adapter.js";
import type { Interrupted } from "../store/idempotency.js";
import { INSTANCE_LEASE_MS } from "../store/idempotency.js";
import type { ServiceContext } from "./context.js";

export function interruptedError({ entry, handedOff }: Interrupted): InboundEvent & { kind: "error" } {
  const contact = entry.to.slice(0, entry.to.lastIndexOf("@"));
  const base = { kind: "error" as const, to: entry.from, from: entry.to, id: entry.id };
  if (!handedOff)
    return {
      ...base,
      // RFC 6120 §8.3.3.6 with type wait: the gateway failed, trying again later may work.
      condition: "internal-server-error",
      text:
        `The gateway was interrupted before sending this message to ${contact}: it was not sent. ` +
        "Send it again.",
    };
  return {
    ...base,
    // RFC 6120 §8.3.3.16: the remote end did not answer in time — the message's fate is unknown.
    condition: "remote-server-timeout",
    text:
      `The gateway was interrupted while sending this message to ${contact}; it may or may not have ` +
      "arrived, and it will not be sent again. Check with the recipient before sending it again.",
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
      async (interrupted) => {
        const error = interruptedError(interrupted);
        const { from, id } = interrupted.entry;
        // The claim time tells a later claim of the same id (resent, interrupted again) from this one.
        await svc.inbox.enqueue(svc.domain, error, `interrupted:${from}:${id}:${interrupted.since}`);
        svc.metrics.message(svc.key, "out", interrupted.handedOff ? "interrupted" : "interrupted-queued");
        return { condition: error.condition, text: error.text };
      },
      { startedAt: this.startedAt },
    );
    if (taken > 0) svc.log.warn({ count: taken }, "senders told about messages cut short by a restart");
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
