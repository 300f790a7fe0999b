/**
 * Taking an alert in, for the API and the Alertmanager receiver alike: bearer-token auth, who the token may
 * reach (recipients expanded from groups), the named limits, and the one atomic write.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { NotifyConfig, TokenConfig } from "./config.js";
import type { Directory } from "./directory.js";
import type { NotifyMetrics } from "./metrics.js";
import type { AlertStore, Severity } from "./store.js";
import { IDEMPOTENCY_TTL_SECONDS } from "./config.js";
import type { KeyBuilder } from "../../src/adapter.js";

/** Longest Idempotency-Key header accepted. */
export const MAX_IDEMPOTENCY_KEY_CHARS = 255;

/** An answer the API sends as is: status and JSON body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message ?? body.error));
    this.name = "ApiError";
  }
}

export interface AlertInput {
  recipients: string[];
  title: string;
  text: string;
  severity: Severity;
  dedupKey?: string | undefined;
  policy?: string | undefined;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

export class Intake {
  private readonly tokens: { config: TokenConfig; digest: Buffer }[];

  constructor(
    private readonly deps: {
      config: NotifyConfig;
      secret: (env: string) => string;
      store: AlertStore;
      directory: Directory;
      metrics: NotifyMetrics;
      key: KeyBuilder;
    },
  ) {
    this.tokens = deps.config.tokens.map((t) => ({ config: t, digest: digest(deps.secret(t.tokenEnv)) }));
  }

  /** The token of a request's `Authorization: Bearer …`, or ApiError 401. */
  authenticate(request: FastifyRequest): TokenConfig {
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match?.[1]) {
      const given = digest(match[1]);
      // Every token is compared, in constant time each, so the answer's timing tells nothing.
      let found: TokenConfig | undefined;
      for (const t of this.tokens) if (timingSafeEqual(t.digest, given)) found = t.config;
      if (found) return found;
    }
    throw new ApiError(401, { error: "unauthorized", message: "missing or unknown bearer token" });
  }

  /** Bare JIDs the alert goes to: JIDs as given, groups expanded; 403 naming what the token may not reach. */
  async expand(token: TokenConfig, entries: string[], policyGroup: "all" | "first"): Promise<string[]> {
    const out = new Set<string>();
    for (const [i, raw] of entries.entries()) {
      const entry = raw.trim();
      if (entry.includes("@")) {
        const jid = entry.toLowerCase();
        if (!/^[^@/\s]+@[^@/\s]+$/.test(jid))
          throw new ApiError(400, {
            error: "invalid",
            message: "expected a bare JID or a group name",
            issues: [
              {
                path: `recipients.${i}`,
                message: "expected a bare JID such as alice@example.org or a group name",
              },
            ],
          });
        const domain = jid.slice(jid.indexOf("@") + 1);
        const allowed = token.recipients.some((r) => r.toLowerCase() === jid || r.toLowerCase() === domain);
        if (!allowed)
          throw new ApiError(403, {
            error: "forbidden",
            message: `the token "${token.name}" may not alert ${jid}`,
            recipient: jid,
          });
        out.add(jid);
      } else {
        if (!token.groups.includes(entry))
          throw new ApiError(403, {
            error: "forbidden",
            message: `the token "${token.name}" may not alert the group ${entry}`,
            recipient: entry,
          });
        const members = await this.deps.directory.group(entry);
        if (members.length === 0)
          throw new ApiError(400, {
            error: "invalid",
            message: `the group ${entry} has no members`,
            issues: [{ path: `recipients.${i}`, message: "group without members" }],
          });
        for (const m of policyGroup === "first" ? members.slice(0, 1) : members) out.add(m.toLowerCase());
      }
    }
    return [...out];
  }

  /** The Redis key naming the open alert of a dedup key within a scope (a token, an Alertmanager token). */
  dedupKeyOf(scope: string, dedupKey: string): string {
    return this.deps.key("dedup", scope, createHash("sha256").update(dedupKey).digest("hex"));
  }

  /**
   * Checks the limits and stores the alert (or finds the replay / the open duplicate). Returns the answer
   * body (202). `source` is the sender localpart.
   */
  async take(
    token: TokenConfig,
    input: AlertInput,
    opts: { source: string; idempotencyKey?: string | undefined; dedupScope?: string },
  ): Promise<string> {
    const { config, store, metrics, key } = this.deps;
    const idemKey =
      opts.idempotencyKey === undefined
        ? undefined
        : key("idem", token.name, createHash("sha256").update(opts.idempotencyKey).digest("hex"));
    if (idemKey) {
      // A replay answers before anything else is checked: the first answer, byte for byte.
      const replay = await this.deps.store.replay(idemKey);
      if (replay !== undefined) return replay;
    }
    const limits = config.limits;
    const tooLarge = (limit: string, max: number, what: string) =>
      new ApiError(413, {
        error: "too-large",
        limit,
        max,
        message: `${what} is over the limit ${limit} (${max})`,
      });
    if ([...input.text].length > limits.maxTextChars)
      throw tooLarge("maxTextChars", limits.maxTextChars, "text");
    if ([...input.title].length > limits.maxTitleChars)
      throw tooLarge("maxTitleChars", limits.maxTitleChars, "title");
    if (input.recipients.length > limits.maxRecipients)
      throw tooLarge("maxRecipients", limits.maxRecipients, "recipients");
    const policyName = input.policy ?? config.defaultPolicy;
    const policy = config.policies[policyName];
    if (!policy)
      throw new ApiError(400, {
        error: "invalid",
        message: `no escalation policy named ${policyName}`,
        issues: [{ path: "policy", message: "unknown policy" }],
      });
    const recipients = await this.expand(token, input.recipients, policy.group);
    if (recipients.length > limits.maxRecipients)
      throw tooLarge("maxRecipients", limits.maxRecipients, "recipients (after groups are expanded)");
    const id = randomBytes(8).toString("hex");
    const answer = JSON.stringify({ id, status: "accepted", recipients });
    const dedupKey =
      input.dedupKey === undefined
        ? undefined
        : key(
            "dedup",
            opts.dedupScope ?? token.name,
            createHash("sha256").update(input.dedupKey).digest("hex"),
          );
    const result = await store.create(
      {
        id,
        source: opts.source,
        token: token.name,
        title: input.title,
        text: input.text,
        severity: input.severity,
        policy: policyName,
        createdAt: new Date().toISOString(),
        status: "firing",
        recipients,
      },
      {
        ...(idemKey ? { idempotencyKey: idemKey } : {}),
        idempotencyTtl: IDEMPOTENCY_TTL_SECONDS,
        answer,
        ...(dedupKey ? { dedupKey } : {}),
      },
    );
    if ("replay" in result) return result.replay;
    if ("duplicateOf" in result) {
      const again = JSON.stringify({ id: result.duplicateOf, status: "duplicate" });
      return idemKey ? store.keepAnswer(idemKey, again, IDEMPOTENCY_TTL_SECONDS) : again;
    }
    metrics.received.inc({ source: opts.source, severity: input.severity });
    return answer;
  }
}

/** Sends an ApiError (or a 500 for anything else) as JSON. */
export function sendError(reply: FastifyReply, err: unknown, log: { warn: (o: object, m: string) => void }) {
  if (err instanceof ApiError) {
    if (err.status === 401) void reply.header("www-authenticate", 'Bearer realm="alerts"');
    return reply.code(err.status).type("application/json").send(JSON.stringify(err.body));
  }
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 413)
    return reply
      .code(413)
      .type("application/json")
      .send(
        JSON.stringify({
          error: "too-large",
          limit: "httpBodyLimitBytes",
          message: "the request body is too large",
        }),
      );
  if (status !== undefined && status >= 400 && status < 500)
    return reply
      .code(400)
      .type("application/json")
      .send(
        JSON.stringify({
          error: "invalid",
          message: (err as Error).message,
          issues: [{ path: "", message: (err as Error).message }],
        }),
      );
  log.warn({ err: (err as Error).message }, "alert API request failed");
  return reply
    .code(503)
    .type("application/json")
    .send(
      JSON.stringify({
        error: "unavailable",
        message: "the alert store is unavailable; nothing was stored, retry later",
      }),
    );
}
