/**
 * The gateway's one HTTP server: adapters' webhooks (Twilio…) under /<adapter>/…, and the health endpoints
 * /healthz (the process is alive), /readyz (every component stream up and Redis reachable) and /metrics
 * (Prometheus).
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

export class HttpServer {
  readonly app: FastifyInstance;

  constructor(
    private readonly opts: {
      host: string;
      port: number;
      log: Logger;
      readiness: () => Promise<Readiness>;
      metrics: Registry;
    },
  ) {
    this.app = Fastify({ bodyLimit: HTTP_BODY_LIMIT_BYTES, logger: false, trustProxy: true });
    this.app.addContentTypeParser(
      "application/x-www-form-urlencoded",
      { parseAs: "string" },
      (_req, body, done) => {
        try {
          done(null, parseForm(body as string));
        } catch (err) {
          const error = err as Error & { statusCode?: number };
          error.statusCode = 400;
          done(error, undefined);
        }
      },
    );
    this.app.get("/healthz", () => ({ status: "ok" }));
    this.app.get("/metrics", async (_req, reply) =>
      reply.type(this.opts.metrics.contentType).send(await this.opts.metrics.metrics()),
    );
    this.app.get("/readyz", async (_req, reply) => {
      const readiness = await this.opts.readiness();
      return reply.code(readiness.ready ? 200 : 503).send(readiness);
    });
  }

  /** Adds a route under /<prefix>/…; only before listen(). */
  route(prefix: string, options: RouteOptions): void {
    this.app.route({ ...options, url: `/${prefix}${options.url.startsWith("/") ? "" : "/"}${options.url}` });
  }

  async listen(): Promise<string> {
    const address = await this.app.listen({ host: this.opts.host, port: this.opts.port });
    this.opts.log.info({ address }, "HTTP server listening");
    return address;
  }

  /** The bound port (useful when the config asked for port 0). */
  get port(): number {
    const address = this.app.server.address();
    return typeof address === "object" && address ? address.port : this.opts.port;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}
