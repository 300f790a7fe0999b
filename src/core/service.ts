/**
 * One adapter domain: its component link, the handlers mounted on it, the adapter, and the deliverer that
 * drains the domain's inbox.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Adapter, AdapterContext, HttpContext } from "../adapter.js";
import type { HttpServer } from "../http/server.js";
import type { Metrics } from "../http/metrics.js";
import type { Logger } from "../log.js";
import { Deliverer } from "../delivery/deliverer.js";
import type { Inbox } from "../delivery/inbox.js";
import type { OutboundLedger } from "../store/idempotency.js";
import type { Keys } from "../store/keys.js";
import { RedisIdMap } from "../store/id-map.js";
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
import { handleMessage } from "./messages.js";
import { recordReport } from "./outcomes.js";
import { broadcastGatewayPresence, handlePresence } from "./presence.js";
import { mountRegistration } from "./registration.js";

export interface ServiceDeps {
  key: string;
  domain: string;
  adapter: Adapter;
  link: ComponentLink;
  redis: Redis;
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
  http: { server: HttpServer; publicUrl: () => string } | undefined;
}

export class Service {
  readonly ctx: ServiceContext;
  readonly deliverer: Deliverer;
  private readonly deps: ServiceDeps;
  private readonly interrupted: InterruptedSends;

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
    this.deliverer = new Deliverer(deps.redis, deps.keys, deps.link, deps.instanceId, log, (seconds) =>
      deps.metrics.delivered(deps.key, seconds),
    );
    this.interrupted = new InterruptedSends(ctx);
    this.mount();
  }

  private mount(): void {
    const { entity } = this.ctx.link;
    mountDiscovery(entity.iqCallee, this.ctx);
    mountRegistration(entity.iqCallee, this.ctx);
    mountCommands(entity.iqCallee, this.ctx);
    entity.middleware.use(async (ctx, next) => {
      if (ctx.name === "message") return handleMessage(this.ctx, ctx);
      if (ctx.name === "presence") return handlePresence(this.ctx, ctx);
      return next();
    });
    this.ctx.link.on("online", () => {
      broadcastGatewayPresence(this.ctx).catch((err: unknown) =>
        this.ctx.log.warn({ err: (err as Error).message }, "could not send the gateway's presence"),
      );
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
        const stored = await ctx.inbox.enqueue(ctx.domain, event, options?.dedupeId);
        // A receipt or an error for a message the user sent: the ledger answers a resend with it.
        await recordReport(ctx, event);
        ctx.metrics.message(ctx.key, "in", stored ? "stored" : "duplicate");
        return stored;
      },
      notifyAdmins: async (text) => {
        for (const admin of deps.admins)
          await ctx.inbox.enqueue(ctx.domain, {
            kind: "message",
            to: admin,
            from: ctx.domain,
            id: randomUUID(),
            type: "chat",
            body: text,
          });
      },
    };
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
    this.interrupted.stop();
    await this.deliverer.stop();
    if (this.ctx.link.isOnline)
      await broadcastGatewayPresence(this.ctx, "unavailable").catch((err: unknown) =>
        this.ctx.log.warn({ err: (err as Error).message }, "could not send unavailable presence"),
      );
    await this.ctx.adapter.stop?.();
    await this.ctx.link.stop();
  }
}
