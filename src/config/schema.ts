import { z } from "zod";

/**
 * The single source of truth for gateway.config.json. The core owns the top level and the fields every
 * adapter shares; each adapter contributes its own sub-schema (AdapterFactory.configSchema) which is merged
 * in by buildConfigSchema(). Types come from z.infer, never written twice.
 */

export const hostnameSchema = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, {
    message: "expected a lowercase domain name such as sms.example.org",
  });

export const bareJidSchema = z
  .string()
  .regex(/^[^@/\s]+@[^@/\s]+$/, { message: "expected a bare JID such as admin@example.org" });

export const envNameSchema = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, {
  message: "expected an environment variable name such as GATEWAY_SMS_SECRET",
});

/** Fields every adapter has: its component domain, the environment variable holding its secret, access. */
export const adapterBaseSchema = z.object({
  enabled: z.boolean().default(true),
  domain: hostnameSchema,
  secretEnv: envNameSchema.describe("environment variable holding this component's XEP-0114 secret"),
  access: z
    .object({
      allow: z
        .array(z.string().min(1))
        .optional()
        .describe("bare JIDs or domains allowed to use this adapter (default: xmpp.serverDomains)"),
    })
    .strict()
    .default({}),
});

export const coreSchema = z
  .object({
    xmpp: z
      .object({
        service: z
          .string()
          .regex(/^xmpp:\/\/[^/:]+:\d+$/, {
            message: "expected xmpp://HOST:PORT (the server's component port)",
          })
          .default("xmpp://127.0.0.1:5347"),
        serverDomains: z
          .array(hostnameSchema)
          .min(1)
          .describe("the XMPP server's own domains (default access)"),
        keepaliveSeconds: z.number().int().min(5).max(3600).default(60),
        reconnectMaxSeconds: z.number().int().min(1).max(600).default(30),
        conflictRetrySeconds: z
          .number()
          .int()
          .min(1)
          .max(600)
          .default(5)
          .describe("retry interval while another instance holds the domain (hot standby)"),
        presencePerSecond: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(500)
          .describe(
            "pace of the gateway's presence to its registered users when its stream comes up and at stop " +
              "(100,000 users take 200 s at the default; probes are answered meanwhile)",
          ),
        balancing: z
          .object({
            enabled: z
              .boolean()
              .default(false)
              .describe(
                "the domains sit behind ejabberd's domain_balancing with several instances: each stream " +
                  "finds a barrier address the server answers on it, and a survivor takes over a dead " +
                  "instance's slot until a fresh instance asks for it back (docs/deployment.md)",
              ),
            heartbeatSeconds: z
              .number()
              .min(0.2)
              .max(60)
              .default(2)
              .describe("how often an instance says in Redis that it is alive, and looks at the others"),
            deadAfterSeconds: z
              .number()
              .min(1)
              .max(600)
              .default(10)
              .describe(
                "an instance not heard of for this long is dead and its slots are taken over " +
                  "(at least twice heartbeatSeconds)",
              ),
          })
          .strict()
          .refine((b) => b.deadAfterSeconds >= 2 * b.heartbeatSeconds, {
            message: "deadAfterSeconds must be at least twice heartbeatSeconds",
            path: ["deadAfterSeconds"],
          })
          .default({ enabled: false, heartbeatSeconds: 2, deadAfterSeconds: 10 })
          .describe(
            "several instances behind ejabberd's domain_balancing: heartbeats in Redis, and a dead " +
              'instance\'s slot served by a survivor (docs/deployment.md, "ejabberd with several instances")',
          ),
      })
      .strict(),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\//, { message: "expected redis://HOST:PORT[/DB]" })
          .optional(),
        passwordEnv: envNameSchema.optional(),
        keyPrefix: z
          .string()
          .min(1)
          .max(64)
          .refine((p) => !/[{}]/.test(p), {
            message:
              "must not contain { or }: the gateway puts its own hash tags in key names (Redis Cluster)",
          })
          .default("xgw:"),
        cluster: z
          .array(
            z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/, {
              message: "expected HOST:PORT (an IPv6 address in brackets)",
            }),
          )
          .min(1)
          .optional(),
        sentinels: z
          .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) }).strict())
          .min(1)
          .optional()
          .describe(
            "Redis Sentinel addresses: the gateway asks them for the primary of `masterName` and follows a " +
              "failover by itself (`url` then gives only the database number and TLS)",
          ),
        masterName: z.string().min(1).optional().describe("the primary's name as the sentinels know it"),
        sentinelPasswordEnv: envNameSchema
          .optional()
          .describe("environment variable holding the sentinels' own password, if they have one"),
        replication: z
          .object({
            minReplicas: z
              .number()
              .int()
              .min(0)
              .max(16)
              .default(0)
              .describe(
                "replicas that must have an inbound message or an outbound claim (Redis WAIT) before the " +
                  "network is told it was taken or the message is sent; 0 = the primary alone",
              ),
            timeoutMs: z
              .number()
              .int()
              .min(10)
              .max(60_000)
              .default(1_000)
              .describe("how long to wait for those replicas before answering the network 'try later'"),
          })
          .strict()
          .default({ minReplicas: 0, timeoutMs: 1_000 }),
      })
      .strict()
      .refine((r) => (r.sentinels === undefined) === (r.masterName === undefined), {
        message: "redis.sentinels and redis.masterName go together",
        path: ["masterName"],
      })
      .refine((r) => r.cluster === undefined || (r.url === undefined && r.sentinels === undefined), {
        message: "redis.cluster names the whole store: leave out redis.url and redis.sentinels with it",
        path: ["cluster"],
      })
      .default({
        keyPrefix: "xgw:",
        replication: { minReplicas: 0, timeoutMs: 1_000 },
      }),
    http: z
      .object({
        enabled: z.boolean().default(true),
        host: z
          .string()
          .min(1)
          .default("127.0.0.1")
          .describe("address the public listener binds (Twilio webhooks, SMS media, mail file links)"),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(8080)
          .describe("port of the public listener; 0 picks a free port"),
        private: z
          .object({
            host: z
              .string()
              .min(1)
              .default("127.0.0.1")
              .describe("address the private listener binds; keep it off the Internet"),
            port: z
              .number()
              .int()
              .min(0)
              .max(65535)
              .default(8081)
              .describe("port of the private listener; 0 picks a free port"),
          })
          .strict()
          .default({ host: "127.0.0.1", port: 8081 })
          .describe("the private listener: /healthz, /readyz, /metrics, the admin page and its API"),
        trustedProxies: z
          .array(
            z.string().regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/, {
              message: 'expected an IP address or a CIDR range such as "10.0.0.0/8"',
            }),
          )
          .default([])
          .describe(
            "reverse proxies whose X-Forwarded-For is believed (addresses or CIDR ranges); default none: " +
              "the client address is the TCP peer",
          ),
        publicUrl: z
          .string()
          .regex(/^https?:\/\/[^/]+(\/.*)?$/, {
            message: "expected an http(s) URL such as https://gw.example.org",
          })
          .optional()
          .describe(
            "the URL the outside world (Twilio) reaches this server at, e.g. behind a reverse proxy; " +
              "webhook signatures are checked against it (default: http://host:port)",
          ),
        admin: z
          .object({
            tokenEnv: envNameSchema.describe(
              "environment variable holding the admin token (the password of the admin page and the CLI)",
            ),
          })
          .strict()
          .optional()
          .describe("the admin page under /admin and its API; off when absent"),
      })
      .strict()
      .refine((http) => http.port === 0 || http.port !== http.private.port, {
        message:
          "the public listener (http.port) and the private one (http.private.port) need their own ports",
        path: ["private", "port"],
      })
      .default({
        enabled: true,
        host: "127.0.0.1",
        port: 8080,
        private: { host: "127.0.0.1", port: 8081 },
        trustedProxies: [],
      }),
    admins: z.array(bareJidSchema).default([]),
    instanceId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, { message: "expected letters, digits, '.', '_' or '-' (at most 64)" })
      .optional()
      .describe("stable name of this instance (default: the host name); unique per running instance"),
    log: z
      .object({ level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info") })
      .strict()
      .default({ level: "info" }),
    delivery: z
      .object({
        stuckAfterSeconds: z
          .number()
          .int()
          .min(5)
          .max(86_400)
          .default(60)
          .describe(
            "/readyz reports not-ready while an inbound message has waited longer than this to reach XMPP",
          ),
        maxAttempts: z
          .number()
          .int()
          .min(1)
          .max(1_000)
          .default(5)
          .describe(
            "failed deliveries of one inbound message before it is moved to the dead-letter stream and the admins are told",
          ),
      })
      .strict()
      .default({ stuckAfterSeconds: 60, maxAttempts: 5 }),
    limits: z
      .object({
        maxBodyChars: z
          .number()
          .int()
          .min(1)
          .max(1_000_000)
          .default(10_000)
          .describe("longest message body accepted from XMPP, in characters"),
        idempotencyHours: z
          .number()
          .min(1)
          .max(24 * 7)
          .default(24),
      })
      .strict()
      .default({ maxBodyChars: 10_000, idempotencyHours: 24 }),
  })
  .strict();

export type CoreConfig = z.infer<typeof coreSchema>;
export type AdapterBaseConfig = z.infer<typeof adapterBaseSchema>;

/** An adapter's own options (without the shared base fields). */
export type AdapterOptionsSchema = z.ZodObject;

export function adapterSchema<S extends AdapterOptionsSchema>(own: S) {
  return adapterBaseSchema.extend(own.shape).strict();
}

export function buildConfigSchema(adapters: Record<string, AdapterOptionsSchema>) {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, own] of Object.entries(adapters)) shape[key] = adapterSchema(own).optional();
  return coreSchema.extend({ adapters: z.object(shape).strict().default({}) });
}

export type GatewayConfig = CoreConfig & {
  adapters: Record<string, (AdapterBaseConfig & Record<string, unknown>) | undefined>;
};
