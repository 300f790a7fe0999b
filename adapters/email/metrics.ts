/** The email adapter's Prometheus metrics (served as xgw_email_…). */
import type { AdapterMetrics } from "../../src/adapter.js";

/** Why the SMTP listener refused a mail or a recipient. */
export type RejectReason =
  | "relay"
  | "unknown-recipient"
  | "too-many-recipients"
  | "too-big"
  | "unparseable"
  | "bad-from"
  | "dmarc"
  | "not-stored";

export interface EmailMetrics {
  rejected(reason: RejectReason): void;
  received(): void;
  /** Outcome of an outbound mail: relayed (250), local, refused (5xx), failed (4xx/timeouts after retries). */
  sent(outcome: "relayed" | "local" | "refused" | "failed"): void;
  relayRetry(): void;
  authResult(dmarc: string, verified: boolean): void;
  bounce(action: string): void;
}

export const NO_METRICS: EmailMetrics = {
  rejected: () => undefined,
  received: () => undefined,
  sent: () => undefined,
  relayRetry: () => undefined,
  authResult: () => undefined,
  bounce: () => undefined,
};

export function emailMetrics(metrics: AdapterMetrics): EmailMetrics {
  const rejections = metrics.counter(
    "smtp_rejections_total",
    "Mails or recipients refused by the SMTP listener",
    ["reason"],
  );
  const received = metrics.counter("mails_received_total", "Inbound mails stored for users");
  const sent = metrics.counter("mails_sent_total", "Outbound mails by outcome", ["outcome"]);
  const retries = metrics.counter(
    "relay_retries_total",
    "Attempts repeated after the relay said 4xx or did not answer",
  );
  const auth = metrics.counter(
    "auth_results_total",
    "Inbound DMARC results and whether the sender was verified",
    ["dmarc", "verified"],
  );
  const bounces = metrics.counter("bounces_total", "Delivery status notifications received, by action", [
    "action",
  ]);
  return {
    rejected: (reason) => rejections.inc({ reason }),
    received: () => received.inc(),
    sent: (outcome) => sent.inc({ outcome }),
    relayRetry: () => retries.inc(),
    authResult: (dmarc, verified) => auth.inc({ dmarc, verified: String(verified) }),
    bounce: (action) => bounces.inc({ action }),
  };
}
