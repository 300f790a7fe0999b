/**
 * The gateway's HTTP, on two listeners:
 * - **public** (`http.host`/`http.port`, what a reverse proxy publishes): adapters' routes under
 *   /<adapter>/… — Twilio webhooks, the SMS media proxy, mail file links;
 * - **private** (`http.private`, loopback by default): /healthz (the process is alive), /readyz (every
 *   component stream up and Redis reachable), /metrics (Prometheus), and the admin page and API.
 * Nothing private is reachable through the public port. X-Forwarded-For is believed only from the proxies
 * named in `http.trustedProxies` (request.ip is the TCP peer otherwise).
 */
import Fastify, { type FastifyInstance, type RouteOptions } from "fastify";
import type { Registry } from "prom-client";
import type { Logger } from "../log.js";

/** Largest request body accepted (webhooks are small; MMS media never comes inline). */
export const HTTP_BODY_LIMIT_BYTES = 1024 * 1024;
/** Most form fields parsed from one request. */
export const MAX_FORM_FIELDS = 256;

export interface Readiness {
  ready: boolean;
  checks: Record<string, string>;
}

/** Parses application/x-www-form-urlencoded bodies (Twilio webhooks): repeated keys become arrays. */
export function parseForm(body: string): Record<string, string | string[]> {
  const params = new URLSearchParams(body);
  // No prototype: a field named __proto__ or constructor is a field like any other, never an inherited value.
  const out = Object.create(null) as Record<string, string | string[]>;
  let count = 0;
  for (const [key, value] of params) {
    if (++count > MAX_FORM_FIELDS) throw new Error("too many form fields");
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export interface Listener {
  host: string;
  port: number;
}

/** A Fastify instance with the gateway's body limits, form parser and proxy trust. */
function createApp(trustedProxies: readonly string[]): FastifyInstance {
  const app = Fastify({
    bodyLimit: HTTP_BODY_LIMIT_BYTES,
    logger: false,
    trustProxy: trustedProxies.length > 0 ? [...trustedProxies] : false,
  });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
    try {
      done(null, parseForm(body as string));
    } catch (err) {
      const error = err as Error & { statusCode?: number };
      error.statusCode = 400;
      done(error, undefined);
    }
  });
  return app;
}

/** The port `app` listens on (getsockname: a system call, so read once after listen()). */
function boundPort(app: FastifyInstance, fallback: number): number {
  const address = app.server.address();
  return typeof address === "object" && address ? address.port : fallback;
}

export class HttpServer {
  /** The bound ports, known once both listeners are up (webhook URLs are built from them per request). */
  private ports: { public: number; private: number } | undefined;
  /** The public listener: adapters' webhooks, media and files. */
  readonly app: FastifyInstance;
  /** The private listener: health, readiness, metrics, admin. */
  readonly privateApp: FastifyInstance;

  constructor(
    private readonly opts: {
      public: Listener;
      private: Listener;
      /** Addresses or CIDR ranges whose X-Forwarded-For is believed; empty: none. */
      trustedProxies: readonly string[];
      log: Logger;
      readiness: () => Promise<Readiness>;
      metrics: Registry;
    },
  ) {
    this.app = createApp(opts.trustedProxies);
    this.privateApp = createApp(opts.trustedProxies);
    this.privateApp.get("/healthz", () => ({ status: "ok" }));
    this.privateApp.get("/metrics", async (_req, reply) =>
      reply.type(this.opts.metrics.contentType).send(await this.opts.metrics.metrics()),
    );
    this.privateApp.get("/readyz", async (_req, reply) => {
      const readiness = await this.opts.readiness();
      return reply.code(readiness.ready ? 200 : 503).send(readiness);
    });
  }

  /** Adds a public route under /<prefix>/…; only before listen(). */
  route(prefix: string, options: RouteOptions): void {
    this.app.route({ ...options, url: `/${prefix}${options.url.startsWith("/") ? "" : "/"}${options.url}` });
  }

  /** Adds a public route at an absolute path (an adapter's public API); only before listen(). */
  routeAbsolute(options: RouteOptions): void {
    this.app.route(options);
  }

  /** Opens both listeners; returns their addresses. */
  async listen(): Promise<{ public: string; private: string }> {
    const publicAddress = await this.app.listen({ host: this.opts.public.host, port: this.opts.public.port });
    this.opts.log.info({ address: publicAddress }, "HTTP public listener up (webhooks, media, files)");
    try {
      const privateAddress = await this.privateApp.listen({
        host: this.opts.private.host,
        port: this.opts.private.port,
      });
      this.opts.log.info({ address: privateAddress }, "HTTP private listener up (health, metrics, admin)");
      this.ports = {
        public: boundPort(this.app, this.opts.public.port),
        private: boundPort(this.privateApp, this.opts.private.port),
      };
      return { public: publicAddress, private: privateAddress };
    } catch (err) {
      await this.app.close();
      throw err;
    }
  }

  /** The public listener's bound port (useful when the config asked for port 0). */
  get port(): number {
    return this.ports?.public ?? this.opts.public.port;
  }

  /** The private listener's bound port. */
  get privatePort(): number {
    return this.ports?.private ?? this.opts.private.port;
  }

  async close(): Promise<void> {
    await Promise.all([this.app.close(), this.privateApp.close()]);
  }
}
