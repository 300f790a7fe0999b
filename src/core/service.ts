/**
 * One adapter domain: its component link, the handlers mounted on it, the adapter, and the deliverer that
 * drains the domain's inbox.
 */
import { randomUUID } from "node:crypto";
import type { Component } from "@xmpp/component";
import { scanKeys, type RedisClient } from "../store/redis-client.js";
import type { Adapter, AdapterContext, HttpContext } from "../adapter.js";
import type { HttpServer } from "../http/server.js";
import type { Metrics } from "../http/metrics.js";
import type { Logger } from "../log.js";
import { Deliverer } from "../delivery/deliverer.js";
import type { Inbox } from "../delivery/inbox.js";
import { InvalidInboundEventError } from "../delivery/event-schema.js";
import type { OutboundLedger } from "../store/idempotency.js";
import type { Keys } from "../store/keys.js";
import { RedisIdMap } from "../store/id-map.js";
import type { ReplicationSettings } from "../store/durable.js";
import { Registrations } from "../store/registrations.js";
import { UserSettings } from "../store/settings.js";
import type { ComponentLink } from "../xmpp/link.js";
import { capsVer } from "../xmpp/stanzas.js";
import { AccessPolicy } from "./access.js";
import { coreCommands } from "./admin-commands.js";
import { mountCommands } from "./commands.js";
import type { ServiceContext } from "./context.js";
import { mountDiscovery, serviceFeatures } from "./discovery.js";
import { InterruptedSends } from "./interrupted.js";
import { mountMam } from "./mam.js";
import { handleMessage } from "./messages.js";
import { recordReport } from "./outcomes.js";
import { handlePresence, PresenceBroadcaster } from "./presence.js";
import { mountRegistration } from "./registration.js";
import { guardStanza } from "./boundary.js";
import { GatewayError } from "../xmpp/errors.js";
import { settledWithin } from "../waiting.js";

/**
 * Longest a graceful stop waits for the outbound sends in flight (a Twilio request, an SMTP transaction, an
 * IRC line) to reach their outcome, so their senders get it. A send still running then is reported at the
 * next start as "may not have arrived" (the ledger keeps it in flight).
 */
export const SHUTDOWN_DRAIN_MS = 10_000;
/**
 * How long the unavailable presence to registered users may hold a stop; users not reached by then learn it
 * from their server when they next probe (the stream is gone).
 */
export const STOP_PRESENCE_BUDGET_MS = 10_000;

/** What a user who writes while the gateway is stopping is told (the message was not sent: send it again). */
const STOPPING_TEXT = "The gateway is restarting and did not send this message. Send it again in a minute.";

export interface ServiceDeps {
  key: string;
  domain: string;
  adapter: Adapter;
  link: ComponentLink;
  redis: RedisClient;
  keys: Keys;
  inbox: Inbox;
  ledger: OutboundLedger;
  metrics: Metrics;
  log: Logger;
  allow: readonly string[];
  admins: readonly string[];
  maxBodyChars: number;
  version: string;
  instanceId: string;
  /** Failed deliveries of one inbound entry before it is set aside (config delivery.maxAttempts). */
  maxDeliveryAttempts?: number;
  /** Replicas an inbound entry must be on before it is sent (config redis.replication). */
  replication?: ReplicationSettings;
  /** Pace of the gateway's presence to its registered users (config xmpp.presencePerSecond). */
  presencePerSecond: number;
  http: { server: HttpServer; publicUrl: () => string } | undefined;
}

export class Service {
  readonly ctx: ServiceContext;
  readonly deliverer: Deliverer;
  private readonly deps: ServiceDeps;
  private readonly interrupted: InterruptedSends;
  /** Outbound messages being handled, awaited by stop(). */
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private readonly broadcaster: PresenceBroadcaster;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    const { adapter, domain } = deps;
    const log = deps.log.child({ adapter: deps.key });
    const identity = { category: "gateway", type: adapter.gatewayType, name: `${adapter.name} gateway` };
    const features = serviceFeatures({ adapter });
    const ctx: ServiceContext = {
      key: deps.key,
      domain,
      adapter,
      link: deps.link,
      log,
      access: new AccessPolicy(deps.allow, deps.admins, adapter.name),
      registrations: new Registrations(deps.redis, deps.keys, deps.key),
      settings: new UserSettings(deps.redis, deps.keys, deps.key),
      ledger: deps.ledger,
      metrics: deps.metrics,
      inbox: deps.inbox,
      limits: { maxBodyChars: deps.maxBodyChars },
      identity,
      features,
      capsVer: capsVer([identity], features),
      version: deps.version,
      commands: [...coreCommands(() => ctx), ...(adapter.commands ?? [])],
    };
    this.ctx = ctx;
    this.deliverer = new Deliverer(
      deps.redis,
      deps.keys,
      deps.link,
      deps.instanceId,
      log,
      {
        delivered: (seconds) => deps.metrics.delivered(deps.key, seconds),
        deadLettered: async ({ entryId, event, reason }) => {
          deps.metrics.deadLetter(deps.key);
          // Without the body: the admins learn that something was set aside, for whom, and why.
          const what = event
            ? `A ${event.kind} for ${event.to} (id ${event.id ?? "none"})`
            : "An unreadable entry";
          await this.notifyAdmins(
            `${what} on ${domain} could not be delivered and was set aside in the dead-letter stream ` +
              `${deps.keys.deadLetters(domain)} (entry ${entryId}): ${reason}`,
          );
        },
        storeLost: () =>
          this.notifyAdmins(
            `Redis lost the delivery queue of ${domain}: its data is gone (a restart without persistence, or a ` +
              `failover to a server that had none). Inbound messages it still held may be lost. Delivery goes ` +
              `on; check the persistence of every Redis server (docs/deployment.md, "Redis").`,
          ),
      },
      deps.maxDeliveryAttempts,
      deps.replication,
    );
    this.interrupted = new InterruptedSends(ctx);
    this.broadcaster = new PresenceBroadcaster(ctx, deps.presencePerSecond);
    this.mount();
  }

  private mount(): void {
    this.serveOn(this.ctx.link.entity);
    this.ctx.link.on("online", () => {
      this.broadcaster
        .run("available")
        .catch((err: unknown) =>
          this.ctx.log.warn({ err: (err as Error).message }, "could not send the gateway's presence"),
        );
    });
  }

  /**
   * Handles what arrives on `entity` as on the domain's own stream: also used for a second stream of the
   * same domain that holds a dead instance's slot (src/balancing/). Answers go out on either stream (the
   * server routes them by their recipient).
   */
  serveOn(entity: Component): void {
    mountDiscovery(entity.iqCallee, this.ctx);
    mountRegistration(entity.iqCallee, this.ctx);
    mountCommands(entity.iqCallee, this.ctx);
    mountMam(entity.iqCallee, this.ctx);
    entity.middleware.use(async (ctx, next) => {
      if (ctx.name === "message") {
        // Stopping: no new sends (the stop would cut them short); the sender is told to send again.
        if (this.stopping && ctx.stanza.getChild("body") !== undefined)
          return guardStanza(
            this.ctx.log,
            ctx,
            (el) => this.ctx.link.send(el),
            () => {
              throw new GatewayError("service-unavailable", STOPPING_TEXT, { type: "wait" });
            },
          );
        const handled = handleMessage(this.ctx, ctx);
        this.inFlight.add(handled);
        return handled.finally(() => this.inFlight.delete(handled));
      }
      if (ctx.name === "presence") return handlePresence(this.ctx, ctx);
      return next();
    });
  }

  private httpContext(): HttpContext | undefined {
    const { http, key } = this.deps;
    if (!http) return undefined;
    return {
      get publicUrl() {
        return http.publicUrl();
      },
      publicUrlFor: (path) => `${http.publicUrl()}/${key}${path.startsWith("/") ? "" : "/"}${path}`,
      route: (options) => http.server.route(key, options),
      routeAbsolute: (options) => http.server.routeAbsolute(options),
    };
  }

  adapterContext(): AdapterContext {
    const { ctx, deps } = this;
    return {
      http: this.httpContext(),
      domain: ctx.domain,
      log: ctx.log,
      redis: deps.redis,
      key: deps.keys.adapterKey(deps.key),
      admins: deps.admins,
      registrations: ctx.registrations,
      settings: ctx.settings,
      ids: new RedisIdMap(deps.redis, deps.keys.adapterKey(deps.key)),
      metrics: ctx.metrics.forAdapter(ctx.key),
      instanceId: deps.instanceId,
      deliver: async (event, options) => {
        // A receipt or an error for a message the user sent is recorded in the ledger first: a resend sent
        // as soon as the user sees it must be answered with it, not as a message still on its way.
        await recordReport(ctx, event);
        let stored: boolean;
        try {
          stored = await ctx.inbox.enqueue(ctx.domain, event, options?.dedupeId);
        } catch (err) {
          if (err instanceof InvalidInboundEventError) {
            ctx.metrics.message(ctx.key, "in", "refused");
            ctx.log.warn({ problems: err.problems, kind: event.kind }, "inbound event refused");
          }
          throw err;
        }
        ctx.metrics.message(ctx.key, "in", stored ? "stored" : "duplicate");
        return stored;
      },
      notifyAdmins: (text) => this.notifyAdmins(text),
      registeredAnywhere: () => this.registeredAnywhere(),
    };
  }

  /** Every adapter's registrations hash (keys.allRegistrations()), their users merged. */
  private async registeredAnywhere(): Promise<string[]> {
    const { redis, keys } = this.deps;
    const users = new Set<string>();
    for await (const found of scanKeys(redis, keys.allRegistrations()))
      for (const key of found) for (const user of await redis.hkeys(key)) users.add(user);
    return [...users].sort();
  }

  /** Queues a plain message from the gateway's domain to every admin. */
  private async notifyAdmins(text: string): Promise<void> {
    for (const admin of this.deps.admins)
      await this.ctx.inbox.enqueue(this.ctx.domain, {
        kind: "message",
        to: admin,
        from: this.ctx.domain,
        id: randomUUID(),
        type: "chat",
        body: text,
      });
  }

  async start(): Promise<void> {
    await this.ctx.adapter.start?.(this.adapterContext());
    // Before the stream opens: this instance's own unfinished sends are from a previous run.
    this.interrupted.start();
    this.ctx.link.start();
    this.deliverer.start();
  }

  /** XEP-0100 §8: unavailable to registered users, then close the stream. */
  async stop(): Promise<void> {
    // Sends in flight end first (their outcome and receipt reach the sender while the stream is up), within
    // SHUTDOWN_DRAIN_MS; the deliverer then finishes the batch in hand (sent, confirmed, acknowledged).
    this.stopping = true;
    await this.drain();
    this.interrupted.stop();
    await this.deliverer.stop();
    this.broadcaster.cancel();
    if (this.ctx.link.isOnline)
      await this.broadcaster
        .run("unavailable", STOP_PRESENCE_BUDGET_MS)
        .catch((err: unknown) =>
          this.ctx.log.warn({ err: (err as Error).message }, "could not send unavailable presence"),
        );
    await this.ctx.adapter.stop?.();
    await this.ctx.link.stop();
  }

  private async drain(): Promise<void> {
    if (this.inFlight.size === 0) return;
    const count = this.inFlight.size;
    const finished = await settledWithin(Promise.allSettled([...this.inFlight]), SHUTDOWN_DRAIN_MS);
    if (!finished)
      this.ctx.log.warn(
        { inFlight: this.inFlight.size, waitedMs: SHUTDOWN_DRAIN_MS },
        "stopping with sends still in flight",
      );
    else this.ctx.log.info({ count }, "sends in flight finished before the stop");
  }
}
