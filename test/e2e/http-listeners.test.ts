/**
 * The two HTTP listeners as an operator deploys them: what the public port serves and what only the private
 * one does, and whose X-Forwarded-For the admin login limiter believes (only a configured proxy's).
 */
import { Registry } from "prom-client";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { HttpServer } from "../../src/http/server.js";
import { mountAdmin } from "../../src/http/admin.js";
import { LOGIN_FAILURES_ALLOWED } from "../../src/http/admin-auth.js";

const TOKEN = "listener-test-admin-token";

async function start(trustedProxies: string[]): Promise<HttpServer> {
  const log = pino({ level: "silent" });
  const server = new HttpServer({
    public: { host: "127.0.0.1", port: 0 },
    private: { host: "127.0.0.1", port: 0 },
    trustedProxies,
    log,
    readiness: () => Promise.resolve({ ready: true, checks: {} }),
    metrics: new Registry(),
  });
  server.route("sms", { method: "POST", url: "/twilio/sms", handler: () => "ok" });
  mountAdmin(server.privateApp, {
    actor: "admin@example.org",
    token: TOKEN,
    log,
    services: () => [],
    readiness: () => Promise.resolve({ ready: true, checks: {} }),
    recentErrors: () => [],
  });
  await server.listen();
  return server;
}

/** One login attempt claiming to come from `forwardedFor`; its HTTP status. */
async function login(base: string, forwardedFor: string, token = "guess"): Promise<number> {
  const answer = await fetch(`${base}/admin/login`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": forwardedFor },
    body: `token=${token}`,
    redirect: "manual",
  });
  return answer.status;
}

/** Failed logins from `forwardedFor`, one more than the allowance; their statuses. */
async function failMany(base: string, forwardedFor: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i <= LOGIN_FAILURES_ALLOWED; i++) statuses.push(await login(base, forwardedFor));
  return statuses;
}

describe("public and private HTTP listeners", () => {
  let server: HttpServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves the admin page, metrics and health only on the private listener", async () => {
    server = await start([]);
    const pub = `http://127.0.0.1:${server.port}`;
    const priv = `http://127.0.0.1:${server.privatePort}`;
    expect(server.port).not.toBe(server.privatePort);
    for (const path of ["/admin", "/admin/api/status", "/metrics", "/readyz", "/healthz"])
      expect((await fetch(`${pub}${path}`, { redirect: "manual" })).status, path).toBe(404);
    expect((await fetch(`${priv}/metrics`)).status).toBe(200);
    expect((await fetch(`${priv}/readyz`)).status).toBe(200);
    expect((await fetch(`${priv}/healthz`)).status).toBe(200);
    const page = await fetch(`${priv}/admin`);
    expect(page.status).toBe(401);
    expect(await page.text()).toContain("token"); // the login page
    expect((await fetch(`${priv}/admin/api/status`)).status).toBe(401);
    // Webhooks are public, and only public.
    expect((await fetch(`${pub}/sms/twilio/sms`, { method: "POST" })).status).toBe(200);
    expect((await fetch(`${priv}/sms/twilio/sms`, { method: "POST" })).status).toBe(404);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", async () => {
    server = await start([]);
    const priv = `http://127.0.0.1:${server.privatePort}`;
    // A new forged address per attempt does not dodge the limit: the TCP peer is what counts.
    const statuses: number[] = [];
    for (let i = 0; i <= LOGIN_FAILURES_ALLOWED; i++) statuses.push(await login(priv, `198.51.100.${i + 1}`));
    expect(statuses.slice(0, LOGIN_FAILURES_ALLOWED)).not.toContain(429);
    expect(statuses.at(-1)).toBe(429);
  });

  it("limits each client a configured proxy names, not the proxy itself", async () => {
    server = await start(["127.0.0.1", "::1"]);
    const priv = `http://127.0.0.1:${server.privatePort}`;
    const first = await failMany(priv, "203.0.113.7");
    expect(first.slice(0, LOGIN_FAILURES_ALLOWED)).not.toContain(429);
    expect(first.at(-1)).toBe(429);
    // Another client behind the same proxy still gets its own attempts…
    expect(await login(priv, "203.0.113.8")).toBe(401);
    expect(await login(priv, "203.0.113.8", TOKEN)).toBe(303);
    // …and the blocked one stays blocked, even with the right token.
    expect(await login(priv, "203.0.113.7", TOKEN)).toBe(429);
  });
});
