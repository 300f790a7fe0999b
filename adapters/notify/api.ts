/**
 * The alert API on the public listener: POST /api/v1/alerts, GET /api/v1/alerts/{id}, and the OpenAPI 3.1
 * document at /api/v1/openapi.json, built from the same zod schemas that check the requests.
 */
import { z } from "zod";
import type { RouteOptions } from "fastify";
import type { AdapterContext } from "../../src/adapter.js";
import { CHANNELS } from "./config.js";
import { ApiError, Intake, MAX_IDEMPOTENCY_KEY_CHARS } from "./intake.js";
import { STATES, type AlertStore } from "./store.js";
import { sourceLocalpart } from "./codec.js";

export const API_PREFIX = "/api/v1";

export const alertRequestSchema = z
  .object({
    recipients: z
      .array(z.string().min(1).max(3071))
      .min(1)
      .describe("bare JIDs and group names the token may reach"),
    title: z.string().min(1).describe("one line; limit maxTitleChars"),
    text: z.string().describe("limit maxTextChars"),
    severity: z.enum(["info", "warning", "critical"]),
    dedupKey: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("while an alert with this key is open, another one is answered with its id"),
    policy: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe("escalation policy name (default: the configured one)"),
  })
  .strict();

export const acceptedSchema = z.object({
  id: z.string(),
  status: z.enum(["accepted", "duplicate"]),
  recipients: z.array(z.string()).optional(),
});

const channelStateSchema = z.object({
  state: z.enum(STATES),
  at: z.iso.datetime(),
  history: z.partialRecord(z.enum(STATES), z.iso.datetime()),
});

export const alertStatusSchema = z.object({
  id: z.string(),
  source: z.string(),
  title: z.string(),
  severity: z.enum(["info", "warning", "critical"]),
  status: z.enum(["firing", "resolved"]),
  createdAt: z.iso.datetime(),
  resolvedAt: z.iso.datetime().optional(),
  policy: z.string(),
  recipients: z.array(
    z.object({
      jid: z.string(),
      acknowledged: z.object({ at: z.iso.datetime(), via: z.string() }).nullable(),
      channels: z.partialRecord(z.enum(CHANNELS), channelStateSchema),
    }),
  ),
});

export const errorSchema = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  recipient: z.string().optional(),
  limit: z.string().optional(),
  max: z.number().optional(),
});

/** Zod issues → 400 with each field's path. */
export function invalid(error: z.ZodError): ApiError {
  return new ApiError(400, {
    error: "invalid",
    message: error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; "),
    issues: error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
  });
}

/** The recipient/channel states of an alert, as GET answers them. */
export function statusOf(states: Record<string, string>, recipients: string[]) {
  return recipients.map((jid) => {
    const channels: Record<string, { state: string; at: string; history: Record<string, string> }> = {};
    for (const channel of CHANNELS) {
      const history: Record<string, string> = {};
      for (const state of STATES) {
        const at = states[`${jid} ${channel} ${state}`];
        if (at) history[state] = at;
      }
      const reached = STATES.filter((s) => history[s] !== undefined);
      const last = reached.at(-1);
      if (last) channels[channel] = { state: last, at: history[last] ?? "", history };
    }
    const ackAt = states[`${jid} ack`];
    return {
      jid,
      acknowledged: ackAt ? { at: ackAt, via: states[`${jid} ackVia`] ?? "xmpp" } : null,
      channels,
    };
  });
}

export function openApiDocument(publicUrl: string) {
  const schema = (s: z.ZodType, io: "input" | "output" = "output") =>
    z.toJSONSchema(s, { io, target: "draft-2020-12" });
  const json = (s: z.ZodType) => ({ content: { "application/json": { schema: schema(s) } } });
  const errors = {
    "400": {
      description: "malformed JSON or a field that does not fit (issues name each path)",
      ...json(errorSchema),
    },
    "401": { description: "missing or unknown bearer token", ...json(errorSchema) },
    "403": {
      description: "the token may not reach a recipient (named in `recipient`)",
      ...json(errorSchema),
    },
    "413": { description: "over a named limit (`limit`)", ...json(errorSchema) },
  };
  return {
    openapi: "3.1.0",
    info: { title: "xmpp-gateway alerts", version: "1" },
    servers: [{ url: publicUrl }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths: {
      [`${API_PREFIX}/alerts`]: {
        post: {
          summary: "Send an alert",
          parameters: [
            {
              name: "Idempotency-Key",
              in: "header",
              required: false,
              description: "a repeat within 24 h gets the first answer, byte for byte",
              schema: { type: "string", maxLength: MAX_IDEMPOTENCY_KEY_CHARS },
            },
          ],
          requestBody: {
            required: true,
            content: { "application/json": { schema: schema(alertRequestSchema, "input") } },
          },
          responses: {
            "202": { description: "stored; escalation has begun", ...json(acceptedSchema) },
            ...errors,
          },
        },
      },
      [`${API_PREFIX}/alerts/{id}`]: {
        get: {
          summary: "Each recipient's state per channel",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            "200": { description: "the alert", ...json(alertStatusSchema) },
            "401": errors["401"],
            "404": { description: "no such alert for this token", ...json(errorSchema) },
          },
        },
      },
      [`${API_PREFIX}/alertmanager`]: {
        post: {
          summary: "Prometheus Alertmanager webhook receiver (payload version 4)",
          parameters: [
            {
              name: "to",
              in: "query",
              required: false,
              description: "comma-separated JIDs and group names (default: the token's defaultRecipients)",
              schema: { type: "string" },
            },
          ],
          requestBody: { required: true, content: { "application/json": { schema: { type: "object" } } } },
          responses: { "200": { description: "taken (or a repeat of a state already taken)" }, ...errors },
        },
      },
    },
  };
}

export function mountApi(opts: {
  ctx: AdapterContext;
  intake: Intake;
  store: AlertStore;
  route: (options: RouteOptions) => void;
}): void {
  const { ctx, intake, store, route } = opts;
  route({
    method: "POST",
    url: `${API_PREFIX}/alerts`,
    handler: async (request, reply) => {
      const token = intake.authenticate(request);
      const parsed = alertRequestSchema.safeParse(request.body);
      if (!parsed.success) throw invalid(parsed.error);
      const idem = request.headers["idempotency-key"];
      if (
        idem !== undefined &&
        (typeof idem !== "string" || idem.length === 0 || idem.length > MAX_IDEMPOTENCY_KEY_CHARS)
      )
        throw new ApiError(400, {
          error: "invalid",
          message: `Idempotency-Key: 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`,
          issues: [{ path: "Idempotency-Key", message: "bad header" }],
        });
      const answer = await intake.take(token, parsed.data, {
        source: sourceLocalpart(token.name),
        idempotencyKey: idem,
      });
      return reply.code(202).type("application/json").send(answer);
    },
  });
  route({
    method: "GET",
    url: `${API_PREFIX}/alerts/:id`,
    handler: async (request, reply) => {
      const token = intake.authenticate(request);
      const { id } = request.params as { id: string };
      const alert = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await store.get(id) : undefined;
      if (!alert || alert.token !== token.name)
        throw new ApiError(404, { error: "not-found", message: `no alert ${id}` });
      const states = await store.states(id);
      return reply.type("application/json").send({
        id: alert.id,
        source: alert.source,
        title: alert.title,
        severity: alert.severity,
        status: alert.status,
        createdAt: alert.createdAt,
        ...(alert.resolvedAt ? { resolvedAt: alert.resolvedAt } : {}),
        policy: alert.policy,
        recipients: statusOf(states, alert.recipients),
      });
    },
  });
  route({
    method: "GET",
    url: `${API_PREFIX}/openapi.json`,
    handler: (_request, reply) =>
      reply.type("application/json").send(openApiDocument(ctx.http?.publicUrl ?? "")),
  });
}
