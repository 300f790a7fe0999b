/**
 * The running gateway: one Redis connection, and one Service (component link + adapter + deliverer) per
 * enabled adapter. Built by src/compose.ts from the config and the adapter factories.
 */
import { hostname } from "node:os";
import type { RedisClient } from "./store/redis-client.js";
import type { AdapterFactory } from "./adapter.js";
import type { LoadedConfig } from "./config/load.js";
import type { Logger } from "./log.js";
import { Inbox } from "./delivery/inbox.js";
import { OutboundLedger } from "./store/idempotency.js";
import { Keys } from "./store/keys.js";
import { InstanceLease } from "./store/instance-lease.js";
import { DurableWrites } from "./store/durable.js";
import { createRedis } from "./store/redis-client.js";
import { migrateKeys } from "./store/migrate.js";
import { ComponentLink, type LinkOptions } from "./xmpp/link.js";
import { Members } from "./balancing/members.js";
import { SlotKeeper } from "./balancing/keeper.js";
import { Service } from "./core/service.js";
import { HttpServer, type Readiness } from "./http/server.js";
import { Metrics } from "./http/metrics.js";
import { mountAdmin } from "./http/admin.js";
import { RecentErrors } from "./http/recent-errors.js";
import { packageVersion } from "./version.js";

/** ioredis: fail a command fast while Redis is down, so webhooks and SMTP can answer "try later". */
const REDIS_OPTIONS = {
  maxRetriesPerRequest: 1,
  enableOfflineQueue: false,
  connectTimeout: 5_000,
  enableAutoPipelining: true,
} as const;

export class Gateway {
  readonly redis: RedisClient;
  readonly services = new Map<string, Service>();
  /** Per domain: how to open another stream for it (a dead instance's slot). */
  private readonly extraLinkOptions = new Map<string, LinkOptions>();
  readonly inbox: Inbox;
  readonly http: HttpServer | undefined;
  readonly metrics: Metrics;
  /** The last warnings and errors logged (the admin page shows them); fed by the logger's warning sink. */
  readonly recentErrors: RecentErrors;
  /** This process's exclusive hold on its instance id (src/store/instance-lease.ts). */
  readonly instance: InstanceLease;
  private readonly stuckAfterSeconds: number;
  /** Inbound events and outbound claims, replicated before they count when the config asks for it. */
  private readonly durable: DurableWrites;
  private readonly keys: Keys;
  /** Behind ejabberd's domain_balancing (xmpp.balancing.enabled): serves dead instances' slots. */
  readonly slots: SlotKeeper | undefined;
  private started = false;

  constructor(
    loaded: LoadedConfig,
    factories: Readonly<Record<string, AdapterFactory>>,
    private readonly log: Logger,
    options: { recentErrors?: RecentErrors } = {},
  ) {
    this.recentErrors = options.recentErrors ?? new RecentErrors();
    const { config, secrets, redisPassword, sentinelPassword } = loaded;
    this.redis = createRedis(
      { ...config.redis, sentinelPassword },
      { ...REDIS_OPTIONS, password: redisPassword, lazyConnect: true },
      log,
      "main",
    );
    const keys = new Keys(config.redis.keyPrefix);
    this.keys = keys;
    const instanceId = config.instanceId ?? hostname();
    this.instance = new InstanceLease(this.redis, keys, instanceId, log.child({ part: "instance" }));
    this.stuckAfterSeconds = config.delivery.stuckAfterSeconds;
    this.durable = new DurableWrites(this.redis, config.redis.replication, log);
    this.inbox = new Inbox(this.redis, keys, this.durable);
    const ledger = new OutboundLedger(
      this.redis,
      keys,
      Math.round(config.limits.idempotencyHours * 3600),
      instanceId,
      this.durable,
    );
    const [serverDomain] = config.xmpp.serverDomains;
    const version = packageVersion();
    this.metrics = new Metrics({
      links: () =>
        [...this.services].map(([adapter, s]) => ({
          adapter,
          domain: s.ctx.domain,
          up: s.ctx.link.isOnline,
          reconnects: s.ctx.link.reconnects,
        })),
      inboxDepths: () =>
        Promise.all(
          [...this.services].map(async ([adapter, s]) => ({
            adapter,
            depth: await this.inbox.depth(s.ctx.domain),
          })),
        ),
      inboxOldest: () =>
        Promise.all(
          [...this.services].map(async ([adapter, s]) => ({
            adapter,
            ageSeconds: await this.inbox.oldestAgeSeconds(s.ctx.domain),
          })),
        ),
    });
    const httpConfig = config.http;
    const http = httpConfig.enabled
      ? new HttpServer({
          public: { host: httpConfig.host, port: httpConfig.port },
          private: httpConfig.private,
          trustedProxies: httpConfig.trustedProxies,
          log,
          readiness: () => this.readiness(),
          metrics: this.metrics.registry,
        })
      : undefined;
    this.http = http;
    const publicUrl = () =>
      (httpConfig.publicUrl ?? `http://${httpConfig.host}:${http?.port ?? httpConfig.port}`).replace(
        /\/+$/,
        "",
      );

    for (const [key, adapterConfig] of Object.entries(config.adapters)) {
      if (!adapterConfig?.enabled) continue;
      const factory = factories[key];
      const secret = secrets[key];
      if (!factory || secret === undefined) throw new Error(`No adapter factory or secret for "${key}"`);
      const linkOptions: LinkOptions = {
        service: config.xmpp.service,
        domain: adapterConfig.domain,
        secret,
        serverDomain: serverDomain ?? adapterConfig.domain,
        log: log.child({ adapter: key }),
        keepaliveMs: config.xmpp.keepaliveSeconds * 1000,
        reconnectMaxMs: config.xmpp.reconnectMaxSeconds * 1000,
        conflictRetryMs: config.xmpp.conflictRetrySeconds * 1000,
        findSlot: config.xmpp.balancing.enabled,
      };
      const link = new ComponentLink(linkOptions);
      linkOptions.log = linkOptions.log.child({ part: "extra-stream" });
      this.extraLinkOptions.set(adapterConfig.domain, linkOptions);
      const service = new Service({
        key,
        domain: adapterConfig.domain,
        adapter: factory.create(adapterConfig, (name) => {
          const value = loaded.adapterSecrets[name];
          if (value === undefined) throw new Error(`adapters.${key}: no secret was loaded from ${name}`);
          return value;
        }),
        link,
        redis: this.redis,
        keys,
        inbox: this.inbox,
        ledger,
        metrics: this.metrics,
        log,
        allow: adapterConfig.access.allow ?? config.xmpp.serverDomains,
        admins: config.admins,
        maxBodyChars: config.limits.maxBodyChars,
        version,
        instanceId,
        maxDeliveryAttempts: config.delivery.maxAttempts,
        replication: config.redis.replication,
        presencePerSecond: config.xmpp.presencePerSecond,
        http: http ? { server: http, publicUrl } : undefined,
      });
      this.services.set(key, service);
    }
    const { balancing } = config.xmpp;
    this.slots = balancing.enabled
      ? new SlotKeeper(
          new Members(
            this.redis,
            keys,
            instanceId,
            [...this.services.values()].map((s) => s.ctx.domain),
            () => [...this.services.values()].filter((s) => s.ctx.link.isOnline).map((s) => s.ctx.domain),
            {
              heartbeatMs: balancing.heartbeatSeconds * 1000,
              deadAfterMs: balancing.deadAfterSeconds * 1000,
            },
          ),
          {
            openStream: (domain, deadId) => this.openExtraStream(domain, deadId),
            instanceGone: async (deadId) => {
              for (const s of this.services.values()) await s.ctx.adapter.instanceGone?.(deadId);
            },
            adoptPending: (domain, deadId) =>
              this.serviceOf(domain)?.deliverer.adopt(deadId) ?? Promise.resolve(0),
            takenOver: (domain) => this.metrics.slotTakenOver(domain),
            gaveBack: (domain) => this.metrics.slotGivenBack(domain),
          },
          log.child({ part: "balancing" }),
        )
      : undefined;
    for (const service of this.services.values())
      service.ctx.link.on("online", () => this.slots?.streamOnline());
    if (http && loaded.adminToken)
      mountAdmin(http.privateApp, {
        actor: config.admins[0] ?? `admin@${serverDomain ?? "localhost"}`,
        token: loaded.adminToken,
        log: log.child({ part: "admin" }),
        readiness: () => this.readiness(),
        recentErrors: () => this.recentErrors.list(),
        services: () =>
          [...this.services].map(([key, s]) => ({
            key,
            name: s.ctx.adapter.name,
            domain: s.ctx.domain,
            online: s.ctx.link.isOnline,
            reconnects: s.ctx.link.reconnects,
            retryDelayMs: s.ctx.link.isOnline ? undefined : s.ctx.link.retryDelayMs,
            commands: s.ctx.commands,
            inboxDepth: () => this.inbox.depth(s.ctx.domain),
            inboxOldestSeconds: () => this.inbox.oldestAgeSeconds(s.ctx.domain),
            registeredUsers: () => s.ctx.registrations.count(),
          })),
      });
  }

  /**
   * Waits for Redis (retrying while it is down), takes the instance id (InstanceIdInUseError when another
   * live process runs with it), then starts every adapter and component stream.
   */
  async start(): Promise<void> {
    await this.connectRedis();
    try {
      await migrateKeys(this.redis, this.keys, this.log.child({ part: "migrate" }));
      await this.instance.acquire();
    } catch (err) {
      this.redis.disconnect();
      throw err;
    }
    // A survivor may hold this instance's slot: ask for it back before connecting (src/balancing/keeper.ts).
    // If that fails (Redis went away again), connect anyway: with every slot held, the streams stand by.
    await this.slots
      ?.reclaim()
      .catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, "could not ask for a taken-over slot back"),
      );
    for (const service of this.services.values()) await service.start();
    this.slots?.start();
    await this.http?.listen();
    this.started = true;
  }

  /**
   * What /readyz reports: every component stream online, Redis answering, no inbound message waiting longer
   * than delivery.stuckAfterSeconds (delivery stuck), and this process still holding its instance id.
   */
  async readiness(): Promise<Readiness> {
    const checks: Record<string, string> = {};
    for (const [key, service] of this.services)
      checks[`xmpp:${key}`] = service.ctx.link.isOnline ? "online" : "component stream down";
    try {
      await this.redis.ping();
      checks.redis = "ok";
    } catch (err) {
      // The driver's text stays in the log: /readyz names the failed check, nothing more.
      checks.redis = "unreachable";
      this.log.warn({ err: (err as Error).message }, "readiness: redis unreachable");
    }
    if (checks.redis === "ok")
      for (const [key, service] of this.services) {
        const { domain } = service.ctx;
        const waited = await this.inbox.oldestAgeSeconds(domain).catch(() => 0);
        checks[`delivery:${key}`] =
          waited > this.stuckAfterSeconds
            ? `stuck: the oldest inbound message for ${domain} has waited ${Math.round(waited)} s ` +
              `(limit ${this.stuckAfterSeconds} s)`
            : "ok";
      }
    if (this.started && this.instance.lost)
      checks.instance = `the instance id "${this.instance.instanceId}" is held by another process`;
    const ready = Object.values(checks).every((v) => v === "ok" || v === "online");
    return { ready, checks };
  }

  private serviceOf(domain: string): Service | undefined {
    return [...this.services.values()].find((s) => s.ctx.domain === domain);
  }

  /** A second stream for one of this instance's domains, serving a dead instance's slot like the first. */
  private openExtraStream(domain: string, deadId: string): ComponentLink | undefined {
    const service = this.serviceOf(domain);
    const options = this.extraLinkOptions.get(domain);
    if (!service || !options) return undefined;
    const link = new ComponentLink({ ...options, log: options.log.child({ deadInstance: deadId }) });
    service.serveOn(link.entity);
    return link;
  }

  private async connectRedis(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (this.redis.status === "wait" || this.redis.status === "end") await this.redis.connect();
        await this.redis.ping();
        return;
      } catch (err) {
        this.log.warn({ err: (err as Error).message, attempt }, "waiting for Redis");
        this.redis.disconnect();
        await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))));
      }
    }
  }

  /** Graceful stop: unavailable presence to users, adapters stopped, streams closed, Redis closed. */
  async stop(): Promise<void> {
    // No more takeovers; the dead instances' slots this one serves go to another survivor.
    await this.slots
      ?.stop()
      .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "error while leaving"));
    // Stop taking webhooks first, then drain and close the component streams.
    await this.http?.close().catch((err: unknown) => this.log.warn({ err }, "error while closing HTTP"));
    if (this.started)
      await Promise.all(
        [...this.services.values()].map((s) =>
          s.stop().catch((err: unknown) => {
            this.log.error({ err }, "error while stopping a service");
          }),
        ),
      );
    this.started = false;
    await this.slots
      ?.leave()
      .catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, "could not leave the balancing"),
      );
    await this.instance
      .release()
      .catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message }, "could not release the instance id"),
      );
    this.durable.disconnect();
    this.redis.disconnect();
  }
}
