/** The notify adapter's metrics (served as xgw_notify_*). */
import type { Counter, Histogram } from "prom-client";
import type { AdapterMetrics } from "../../src/adapter.js";

/** Time-to-ack buckets, in seconds: from a quick reply to a slow night. */
export const ACK_BUCKETS = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600];

export interface NotifyMetrics {
  received: Counter<string>;
  sent: Counter<string>;
  delivered: Counter<string>;
  acked: Counter<string>;
  held: Counter<string>;
  timeToAck: Histogram<string>;
}

export function notifyMetrics(m: AdapterMetrics): NotifyMetrics {
  return {
    received: m.counter("alerts_received_total", "Alerts taken (API and Alertmanager)", [
      "source",
      "severity",
    ]),
    sent: m.counter("sent_total", "Alert messages sent, per channel", ["channel"]),
    delivered: m.counter("delivered_total", "Alert messages confirmed delivered, per channel", ["channel"]),
    acked: m.counter("acked_total", "Alerts acknowledged by a recipient, per channel of the ack", [
      "channel",
    ]),
    held: m.counter(
      "rate_held_total",
      "Escalation steps held back because their channel's rate was spent (they run again later)",
      ["channel"],
    ),
    timeToAck: m.histogram(
      "time_to_ack_seconds",
      "Time from an alert's creation to a recipient's acknowledgement",
      ACK_BUCKETS,
    ),
  };
}
