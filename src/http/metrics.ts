/**
 * Prometheus metrics (/metrics): component stream state, reconnects, inbound queue depth and the age of its
 * oldest entry, delivery latency, and messages by adapter, direction and outcome. Adapters add their own
 * (`xgw_<adapter>_…`) through forAdapter().
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AdapterMetrics } from "../adapter.js";

export interface MetricSources {
  /** Per adapter key: its domain, whether its stream is up, and how often it reconnected. */
  links(): { adapter: string; domain: string; up: boolean; reconnects: number }[];
  /** Per adapter key: inbound events waiting in its Redis stream. */
  inboxDepths(): Promise<{ adapter: string; depth: number }[]>;
  /** Per adapter key: seconds the oldest undelivered inbound event has waited (0 when none). */
  inboxOldest(): Promise<{ adapter: string; ageSeconds: number }[]>;
}

/**
 * Buckets of the delivery latency (persisted in Redis → confirmed by the XMPP server), in seconds: most
 * deliveries take milliseconds; the long buckets show outages of the server or the component stream.
 */
export const DELIVERY_LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

export type Direction = "in" | "out";

export class Metrics {
  readonly registry = new Registry();
  private readonly messages: Counter<"adapter" | "direction" | "outcome">;
  private readonly latency: Histogram<"adapter">;
  private readonly deadLetters: Counter<"adapter">;

  private readonly slotTakeovers: Counter<"domain">;
  private readonly slotGiveBacks: Counter<"domain">;

  constructor(sources: MetricSources) {
    collectDefaultMetrics({ register: this.registry, prefix: "xgw_" });
    this.slotTakeovers = new Counter({
      name: "xgw_slot_takeovers_total",
      help: "Streams this instance opened to serve a dead instance's ejabberd balancing slot (xmpp.balancing)",
      labelNames: ["domain"],
      registers: [this.registry],
    });
    this.slotGiveBacks = new Counter({
      name: "xgw_slot_givebacks_total",
      help: "Taken-over balancing slots this instance closed again (a fresh instance asked for them)",
      labelNames: ["domain"],
      registers: [this.registry],
    });
    this.deadLetters = new Counter({
      name: "xgw_dead_letters_total",
      help: "Inbound entries set aside in the dead-letter stream after they could not be delivered",
      labelNames: ["adapter"],
      registers: [this.registry],
    });
    this.messages = new Counter({
      name: "xgw_messages_total",
      help: "Messages by adapter, direction (out: XMPP to network, in: network to XMPP) and outcome",
      labelNames: ["adapter", "direction", "outcome"],
      registers: [this.registry],
    });
    new Gauge({
      name: "xgw_component_up",
      help: "1 when the XEP-0114 stream of the adapter's domain is online",
      labelNames: ["adapter", "domain"],
      registers: [this.registry],
      collect() {
        for (const l of sources.links()) this.set({ adapter: l.adapter, domain: l.domain }, l.up ? 1 : 0);
      },
    });
    new Gauge({
      name: "xgw_component_reconnects",
      help: "Reconnects of the adapter's component stream since start",
      labelNames: ["adapter"],
      registers: [this.registry],
      collect() {
        for (const l of sources.links()) this.set({ adapter: l.adapter }, l.reconnects);
      },
    });
    new Gauge({
      name: "xgw_inbox_depth",
      help: "Inbound events persisted but not yet confirmed delivered to XMPP",
      labelNames: ["adapter"],
      registers: [this.registry],
      async collect() {
        for (const d of await sources.inboxDepths().catch(() => []))
          this.set({ adapter: d.adapter }, d.depth);
      },
    });
    new Gauge({
      name: "xgw_inbox_oldest_age_seconds",
      help: "Seconds the oldest inbound event not yet confirmed delivered has been waiting (0: none)",
      labelNames: ["adapter"],
      registers: [this.registry],
      async collect() {
        for (const d of await sources.inboxOldest().catch(() => []))
          this.set({ adapter: d.adapter }, d.ageSeconds);
      },
    });
    this.latency = new Histogram({
      name: "xgw_delivery_latency_seconds",
      help: "Inbound events: from persisted in Redis to confirmed received by the XMPP server (barrier ping)",
      labelNames: ["adapter"],
      buckets: DELIVERY_LATENCY_BUCKETS,
      registers: [this.registry],
    });
  }

  /** An inbound event the server confirmed, `seconds` after it was persisted. */
  delivered(adapter: string, seconds: number): void {
    this.latency.observe({ adapter }, seconds);
  }

  /** An inbound entry was moved to the dead-letter stream. */
  deadLetter(adapter: string): void {
    this.deadLetters.inc({ adapter });
  }

  /** A stream for a dead instance's slot came online. */
  slotTakenOver(domain: string): void {
    this.slotTakeovers.inc({ domain });
  }

  /** A stream for a dead instance's slot was closed for a fresh instance. */
  slotGivenBack(domain: string): void {
    this.slotGiveBacks.inc({ domain });
  }

  message(adapter: string, direction: Direction, outcome: string): void {
    this.messages.inc({ adapter, direction, outcome });
  }

  /**
   * Metrics an adapter defines for itself, named `xgw_<adapter>_<name>` so two adapters never collide.
   * Asking twice for the same name returns the same metric (an adapter may be started again in tests).
   */
  forAdapter(adapter: string): AdapterMetrics {
    const registry = this.registry;
    const full = (name: string) => `xgw_${adapter}_${name}`;
    function existing<T>(name: string): T | undefined {
      return registry.getSingleMetric(full(name)) as T | undefined;
    }
    return {
      counter: (name, help, labelNames = []) =>
        existing<Counter<string>>(name) ??
        new Counter({ name: full(name), help, labelNames, registers: [registry] }),
      gauge: (name, help, collect, labelNames = []) =>
        existing<Gauge<string>>(name) ??
        new Gauge({
          name: full(name),
          help,
          labelNames,
          registers: [registry],
          async collect() {
            if (collect) await collect(this);
          },
        }),
      histogram: (name, help, buckets, labelNames = []) =>
        existing<Histogram<string>>(name) ??
        new Histogram({ name: full(name), help, buckets: [...buckets], labelNames, registers: [registry] }),
    };
  }
}
