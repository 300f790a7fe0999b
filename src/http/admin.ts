/**
 * The admin page (/admin) and its API (/admin/api/…), served by the gateway's HTTP server.
 *
 * Every route answers 401 with no data until the caller proves it knows the admin token (see admin-auth.ts).
 * The actions are the adapters' and the core's admin ad-hoc commands (XEP-0050), rendered as HTML forms and
 * run as the first configured admin: one implementation for XMPP clients, the web page and the CLI.
 * Cookie-authenticated posts must carry the session's CSRF token; bodies are small and strictly checked
 * (an oversized, malformed or unexpected field is a 400 and runs nothing).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AdhocCommand, CommandResult, Form, FormValues } from "../adapter.js";
import type { Logger } from "../log.js";
import { GatewayError } from "../xmpp/errors.js";
import { MAX_FORM_VALUE_CHARS, checkAgainstForm } from "../xmpp/forms.js";
import {
  AdminAuth,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  cookieValue,
  safeEqual,
  type Session,
} from "./admin-auth.js";
import {
  commandPage,
  dashboard,
  loginPage,
  messagePage,
  resultPage,
  type AdapterView,
} from "./admin-html.js";
import type { RecentError } from "./recent-errors.js";
import type { Readiness } from "./server.js";

/** Largest body an admin route accepts (a command form is a few short fields). */
export const ADMIN_BODY_LIMIT_BYTES = 16 * 1024;

/** One adapter domain as the admin page sees it. */
export interface AdminService {
  key: string;
  name: string;
  domain: string;
  online: boolean;
  reconnects: number;
  retryDelayMs: number | undefined;
  commands: readonly AdhocCommand[];
  inboxDepth(): Promise<number>;
  inboxOldestSeconds(): Promise<number>;
  registeredUsers(): Promise<number>;
}

export interface AdminBackend {
  /** The JID commands run as (the first configured admin). */
  actor: string;
  token: string;
  log: Logger;
  services(): AdminService[];
  readiness(): Promise<Readiness>;
  recentErrors(): RecentError[];
}

type Auth = { via: "bearer" } | { via: "session"; id: string; session: Session };

const SECURITY_HEADERS = {
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** A bad request: answered 400 with the text, nothing run. */
class BadRequest extends Error {}

/**
 * The address failed logins are counted against: request.ip, which is the TCP peer unless that peer is one
 * of the configured trusted proxies (http.trustedProxies), in which case it is the client the proxy names
 * in X-Forwarded-For. A client cannot dodge the limit by forging the header: from an untrusted peer it is
 * ignored.
 */
function clientAddress(request: FastifyRequest): string {
  return request.ip || request.socket.remoteAddress || "unknown";
}

function isApi(request: FastifyRequest): boolean {
  return request.url.startsWith("/admin/api/");
}

/** Value read from a CommandResult or status for JSON: unavailable parts become a message. */
async function orUnavailable<T>(fn: () => Promise<T>): Promise<T | string> {
  try {
    return await fn();
  } catch (err) {
    return `unavailable (${(err as Error).message})`;
  }
}

/** Turns posted fields into the command's form values, refusing what the form does not have. */
export function formValues(form: Form | undefined, body: Record<string, unknown>): FormValues {
  const fields = new Map((form?.fields ?? []).map((f) => [f.var, f]));
  const values: FormValues = {};
  for (const [name, raw] of Object.entries(body)) {
    if (name === "csrf") continue;
    const field = fields.get(name);
    if (!field) throw new BadRequest(`The form has no field "${name}".`);
    const list = Array.isArray(raw) ? raw : [raw];
    if (!list.every((v): v is string => typeof v === "string"))
      throw new BadRequest(`The value of "${name}" must be text.`);
    if (list.some((v) => v.length > MAX_FORM_VALUE_CHARS))
      throw new BadRequest(`The value of "${name}" is longer than ${MAX_FORM_VALUE_CHARS} characters.`);
    if (field.type === "text-multi")
      values[name] = list.flatMap((v) => v.split(/\r?\n/)).filter((v) => v.trim() !== "");
    else if (list.length > 1) throw new BadRequest(`"${name}" takes one value.`);
    else values[name] = list[0] ?? "";
  }
  // An unticked HTML checkbox sends nothing.
  for (const field of fields.values())
    if (field.type === "boolean" && values[field.var] === undefined) values[field.var] = "false";
  return values;
}

export function mountAdmin(app: FastifyInstance, backend: AdminBackend): void {
  const auth = new AdminAuth(backend.token);
  const authOf = new WeakMap<FastifyRequest, Auth>();

  const adminCommands = (service: AdminService) => service.commands.filter((c) => c.admin);
  const findCommand = (adapter: string, node: string) => {
    const service = backend.services().find((s) => s.key === adapter);
    const command = service && adminCommands(service).find((c) => c.node === node);
    return service && command ? { service, command } : undefined;
  };

  function unauthorized(request: FastifyRequest, reply: FastifyReply, message?: string) {
    reply.headers(SECURITY_HEADERS).code(401);
    if (isApi(request))
      return reply.header("www-authenticate", 'Bearer realm="xmpp-gateway"').send({ error: "unauthorized" });
    return reply.type("text/html; charset=utf-8").send(loginPage(message));
  }

  function sessionCookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
    const secure = request.protocol === "https" ? "; Secure" : "";
    return `${SESSION_COOKIE}=${value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
  }

  async function view(): Promise<{ adapters: AdapterView[]; ready: Readiness }> {
    const adapters = await Promise.all(
      backend.services().map(async (s): Promise<AdapterView> => {
        const commands = adminCommands(s);
        const reports = await Promise.all(
          commands
            .filter((c) => c.report && !c.form)
            .map(async (c) => ({
              name: c.name,
              result: await c.run(backend.actor, {}).catch((err: unknown): CommandResult => ({
                note: `Unavailable: ${(err as Error).message}`,
                noteType: "error",
              })),
            })),
        );
        return {
          key: s.key,
          name: s.name,
          domain: s.domain,
          online: s.online,
          reconnects: s.reconnects,
          retryDelayMs: s.retryDelayMs,
          inboxDepth: await orUnavailable(() => s.inboxDepth()),
          inboxOldestSeconds: await orUnavailable(() => s.inboxOldestSeconds()),
          registeredUsers: await orUnavailable(() => s.registeredUsers()),
          actions: commands
            .filter((c) => !c.report)
            .map((c) => ({ node: c.node, name: c.name, hasForm: c.form !== undefined })),
          reports,
        };
      }),
    );
    return { adapters, ready: await backend.readiness() };
  }

  /** Runs a command with posted values; a refusal is a 400 carrying the command's own text. */
  async function run(
    command: AdhocCommand,
    body: Record<string, unknown>,
  ): Promise<{ status: number; result: CommandResult; condition?: string }> {
    const form = command.form ? await command.form(backend.actor) : undefined;
    const values = formValues(form, body);
    try {
      if (form) checkAgainstForm(form, values);
      const result = await command.run(backend.actor, values);
      backend.log.info({ node: command.node, via: "admin page" }, "admin command run");
      return { status: 200, result };
    } catch (err) {
      if (err instanceof GatewayError)
        return { status: 400, condition: err.condition, result: { note: err.message, noteType: "error" } };
      backend.log.error({ err: (err as Error).message, node: command.node }, "admin command failed");
      return {
        status: 500,
        result: { note: "The command failed; the gateway's log has the details.", noteType: "error" },
      };
    }
  }

  function postedBody(request: FastifyRequest): Record<string, unknown> {
    const body = request.body;
    if (body === undefined || body === null) return {};
    if (typeof body !== "object" || Array.isArray(body)) throw new BadRequest("Expected form fields.");
    return body as Record<string, unknown>;
  }

  void app.register(
    (scope, _opts, done) => {
      scope.addHook("onRequest", async (request, reply) => {
        reply.headers(SECURITY_HEADERS);
        if (request.method === "POST" && request.routeOptions.url === "/admin/login") return;
        const header = request.headers.authorization;
        if (header !== undefined) {
          if (auth.isBlocked(clientAddress(request)))
            return reply.code(429).send({ error: "too many failed attempts; try again later" });
          const token = /^Bearer (.+)$/i.exec(header)?.[1] ?? "";
          if (!auth.checkToken(token)) {
            auth.recordFailure(clientAddress(request));
            backend.log.warn({ path: request.url }, "admin API call with a wrong token refused");
            return unauthorized(request, reply);
          }
          authOf.set(request, { via: "bearer" });
          return;
        }
        const id = cookieValue(request.headers.cookie, SESSION_COOKIE);
        const session = auth.session(id);
        if (!id || !session) return unauthorized(request, reply);
        authOf.set(request, { via: "session", id, session });
      });

      // Cookie-authenticated posts must carry the session's CSRF token (scripts use the bearer token).
      scope.addHook("preHandler", async (request, reply) => {
        const who = authOf.get(request);
        if (request.method !== "POST" || who?.via !== "session") return;
        const body = request.body as Record<string, unknown> | null | undefined;
        const csrf = typeof body?.csrf === "string" ? body.csrf : "";
        if (!safeEqual(csrf, who.session.csrf)) {
          backend.log.warn({ path: request.url }, "admin form post without a valid CSRF token refused");
          return reply
            .code(403)
            .type("text/html; charset=utf-8")
            .send(
              messagePage("Refused", "This form has expired or did not come from the admin page; reload it."),
            );
        }
      });

      scope.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
        const status = err instanceof BadRequest || (err.statusCode ?? 500) < 500 ? 400 : 500;
        if (status === 500) backend.log.error({ err: err.message, path: request.url }, "admin page error");
        const text =
          status === 400 ? `Bad request: ${err.message}` : "Internal error; see the gateway's log.";
        reply.headers(SECURITY_HEADERS).code(status);
        return isApi(request)
          ? reply.send({ error: status === 400 ? "bad-request" : "internal-error", text })
          : reply
              .type("text/html; charset=utf-8")
              .send(messagePage(status === 400 ? "Bad request" : "Error", text));
      });

      const limits = { bodyLimit: ADMIN_BODY_LIMIT_BYTES };

      scope.post("/login", limits, async (request, reply) => {
        const address = clientAddress(request);
        if (auth.isBlocked(address)) {
          backend.log.warn({ path: request.url }, "admin login refused: too many failed attempts");
          return reply
            .code(429)
            .type("text/html; charset=utf-8")
            .send(loginPage("Too many failed attempts from your address; try again in a few minutes."));
        }
        const body = postedBody(request);
        const token = typeof body.token === "string" ? body.token : "";
        if (!auth.checkToken(token)) {
          auth.recordFailure(address);
          backend.log.warn({ path: request.url }, "admin login with a wrong token refused");
          return unauthorized(request, reply, "Wrong token.");
        }
        const { id } = auth.createSession();
        return reply
          .header("set-cookie", sessionCookie(request, id, Math.floor(SESSION_TTL_MS / 1000)))
          .redirect("/admin", 303);
      });

      scope.post("/logout", limits, async (request, reply) => {
        const who = authOf.get(request);
        if (who?.via === "session") auth.endSession(who.id);
        return reply.header("set-cookie", sessionCookie(request, "", 0)).redirect("/admin", 303);
      });

      scope.get("/", async (request, reply) => {
        const who = authOf.get(request);
        const csrf = who?.via === "session" ? who.session.csrf : "";
        const { adapters, ready } = await view();
        return reply
          .type("text/html; charset=utf-8")
          .send(
            dashboard({ adapters, ready, recentErrors: backend.recentErrors(), actor: backend.actor }, csrf),
          );
      });

      scope.get("/commands/:adapter/:node", async (request, reply) => {
        const { adapter = "", node = "" } = request.params as { adapter?: string; node?: string };
        const found = findCommand(adapter, node);
        if (!found)
          return reply
            .code(404)
            .type("text/html; charset=utf-8")
            .send(messagePage("Not found", `There is no admin command "${node}" on "${adapter}".`));
        const who = authOf.get(request);
        const form = found.command.form ? await found.command.form(backend.actor) : { fields: [] };
        return reply
          .type("text/html; charset=utf-8")
          .send(
            commandPage(found.service, found.command, form, who?.via === "session" ? who.session.csrf : ""),
          );
      });

      scope.post("/commands/:adapter/:node", limits, async (request, reply) => {
        const { adapter = "", node = "" } = request.params as { adapter?: string; node?: string };
        const found = findCommand(adapter, node);
        if (!found)
          return reply
            .code(404)
            .type("text/html; charset=utf-8")
            .send(messagePage("Not found", `There is no admin command "${node}" on "${adapter}".`));
        const { status, result } = await run(found.command, postedBody(request));
        const who = authOf.get(request);
        // A next step (a confirmation): the command's page again, filled in, with the command's note.
        if (status === 200 && result.next)
          return reply
            .type("text/html; charset=utf-8")
            .send(
              commandPage(
                found.service,
                found.command,
                result.next,
                who?.via === "session" ? who.session.csrf : "",
                result,
              ),
            );
        return reply
          .code(status)
          .type("text/html; charset=utf-8")
          .send(resultPage(found.service, found.command.name, result));
      });

      scope.get("/api/status", async () => {
        const { adapters, ready } = await view();
        return {
          ...ready,
          adapters: adapters.map(({ actions: _a, reports: _r, ...rest }) => rest),
          recentErrors: backend.recentErrors(),
        };
      });

      scope.get("/api/commands", async () =>
        Promise.all(
          backend.services().flatMap((s) =>
            adminCommands(s).map(async (c) => ({
              adapter: s.key,
              domain: s.domain,
              node: c.node,
              name: c.name,
              fields: c.form
                ? (await c.form(backend.actor)).fields.map((f) => ({
                    var: f.var,
                    type: f.type,
                    label: f.label,
                    required: f.required ?? false,
                    options: f.options?.map((o) => o.value),
                  }))
                : [],
            })),
          ),
        ),
      );

      scope.post("/api/commands/:adapter/:node", limits, async (request, reply) => {
        const { adapter = "", node = "" } = request.params as { adapter?: string; node?: string };
        const found = findCommand(adapter, node);
        if (!found)
          return reply
            .code(404)
            .send({ error: "item-not-found", text: `No admin command "${node}" on "${adapter}".` });
        const body = postedBody(request);
        const values = body.values ?? (Object.keys(body).length ? body : {});
        if (typeof values !== "object" || values === null || Array.isArray(values))
          throw new BadRequest('Expected {"values": {field: value, …}}.');
        const { status, result, condition } = await run(found.command, values as Record<string, unknown>);
        return reply
          .code(status)
          .send(status === 200 ? result : { error: condition ?? "internal-error", text: result.note });
      });

      done();
    },
    { prefix: "/admin" },
  );
}
