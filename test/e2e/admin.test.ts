/**
 * The admin page's HTTP side as an admin (and an attacker) meets it: nothing without the token, CSRF-safe
 * actions, strict bodies, no secrets or message bodies shown; the admin API and the command line on top of
 * it; and /metrics counting exactly what was sent.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTwilioFake, type TwilioFake } from "../twilio/server.js";
import { TEST_SECRET, slotDomain } from "../slots.js";
import { registration, TestUser } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { LOGIN_FAILURES_ALLOWED } from "../../src/http/admin-auth.js";
import { requireDist } from "../support/dist.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const ACCOUNT = "AC" + "2".repeat(32);
const TWILIO_TOKEN = "twilio-token-never-shown";
const ADMIN_TOKEN = "admin-token-0123456789abcdef";
const POOL = ["+12025550401", "+12025550402"];
const OWN = "+12025550410";

describe("admin page and API", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: TwilioFake;
  let gw: TestGateway;
  let base: string;
  let publicBase: string;
  let smsDomain: string;
  let echoDomain: string;
  let dir: string;
  const users: TestUser[] = [];

  const get = (p: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${p}`, { headers, redirect: "manual" });
  const post = (p: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${base}${p}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      redirect: "manual",
    });
  const bearer = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const api = (p: string, values: Record<string, string>) =>
    fetch(`${base}${p}`, {
      method: "POST",
      body: JSON.stringify({ values }),
      headers: { "content-type": "application/json", ...bearer },
    });

  async function login(): Promise<{ cookie: string; csrf: string }> {
    const answer = await post("/admin/login", new URLSearchParams({ token: ADMIN_TOKEN }).toString());
    expect(answer.status).toBe(303);
    const setCookie = answer.headers.get("set-cookie") ?? "";
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    const cookie = setCookie.split(";")[0] ?? "";
    const page = await (await get("/admin", { cookie })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";
    expect(csrf).not.toBe("");
    return { cookie, csrf };
  }

  const numbers = async () =>
    (await (await api("/admin/api/commands/sms/sms-numbers", {})).json()) as {
      form: { fields: { var: string; value: string[] }[] };
    };

  beforeAll(async () => {
    const slot = await takeSlot(bed);
    smsDomain = slotDomain(slot, "sms");
    echoDomain = slotDomain(slot, "echo");
    dir = await mkdtemp(path.join(tmpdir(), "gw-admin-"));
    fake = await startTwilioFake({ accountSid: ACCOUNT, authToken: TWILIO_TOKEN, numbers: [...POOL, OWN] });
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [`boss-${slot}@${peer.host}`],
      http: { admin: { tokenEnv: "TEST_ADMIN_TOKEN" } },
      adapters: {
        sms: {
          twilio: { accountSid: ACCOUNT, authTokenEnv: "TEST_TWILIO_TOKEN", apiBaseUrl: fake.url },
          numbers: { pool: POOL },
          limits: { messagesPerHour: 3 },
        },
      },
      env: { TEST_TWILIO_TOKEN: TWILIO_TOKEN, TEST_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    base = `http://127.0.0.1:${gw.gateway.http!.privatePort}`;
    publicBase = `http://127.0.0.1:${gw.gateway.http!.port}`;
  });

  afterAll(async () => {
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
    await fake?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("answers every admin route 401 with no data without the token", async () => {
    const probes = [
      get("/admin"),
      get("/admin/"),
      get("/admin/api/status"),
      get("/admin/api/commands"),
      get("/admin/commands/sms/sms-assign"),
      post("/admin/commands/sms/sms-assign", `number=${encodeURIComponent(OWN)}&jid=x%40y`),
      post("/admin/logout", ""),
      fetch(`${base}/admin/api/commands/sms/sms-numbers`, { method: "POST", body: "{}" }),
      get("/admin", { cookie: "xgw_admin=made-up" }),
      get("/admin/api/status", { authorization: "Bearer wrong-token" }),
    ];
    for (const answer of await Promise.all(probes)) {
      expect(answer.status, answer.url).toBe(401);
      const text = await answer.text();
      expect(text).not.toContain(smsDomain);
      expect(text).not.toContain(echoDomain);
      expect(text).not.toContain("+1202555");
    }
    expect((await numbers()).form.fields.find((f) => f.var === "dedicated")?.value).toEqual([]);
    const wrong = await post("/admin/login", "token=not-the-token");
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("Wrong token");
  });

  it("shows the live state after login, without secrets", async () => {
    const { cookie } = await login();
    const alice = await TestUser.login(peer, `alice-adm-${smsDomain.split(".")[0]}`);
    users.push(alice);
    expect((await alice.iq("set", smsDomain, registration({ mode: "pool" }))).attrs.type).toBe("result");
    const page = await (await get("/admin", { cookie })).text();
    expect(page).toContain(smsDomain);
    expect(page).toMatch(/data-adapter="sms"[\s\S]*?data-stream>online<[\s\S]*?data-users>1</);
    expect(page).toContain("Ready");
    expect(page).toContain(POOL[0]); // the SMS numbers report
    for (const secret of [TWILIO_TOKEN, ADMIN_TOKEN, TEST_SECRET]) expect(page).not.toContain(secret);

    const status = (await (await get("/admin/api/status", bearer)).json()) as {
      ready: boolean;
      adapters: { key: string; online: boolean; registeredUsers: number; inboxDepth: number }[];
    };
    expect(status.ready).toBe(true);
    expect(status.adapters.find((a) => a.key === "sms")).toMatchObject({ online: true, registeredUsers: 1 });
  });

  it("runs an action only with the session's CSRF token", async () => {
    const { cookie, csrf } = await login();
    const jid = `carol-${smsDomain.split(".")[0]}@${peer.host}`;
    const fields = { number: OWN, jid };
    const noToken = await post("/admin/commands/sms/sms-assign", new URLSearchParams(fields).toString(), {
      cookie,
    });
    expect(noToken.status).toBe(403);
    const badToken = await post(
      "/admin/commands/sms/sms-assign",
      new URLSearchParams({ ...fields, csrf: "forged" }).toString(),
      { cookie },
    );
    expect(badToken.status).toBe(403);
    expect((await numbers()).form.fields.find((f) => f.var === "dedicated")?.value).toEqual([]);

    const ok = await post(
      "/admin/commands/sms/sms-assign",
      new URLSearchParams({ ...fields, csrf }).toString(),
      {
        cookie,
      },
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain(`${OWN} now belongs to ${jid}`);
    expect((await numbers()).form.fields.find((f) => f.var === "dedicated")?.value).toEqual([
      `${OWN} → ${jid}`,
    ]);
  });

  it("refuses oversized, malformed and unexpected posts with 400 and changes nothing", async () => {
    const { cookie, csrf } = await login();
    const form = (fields: Record<string, string>) => new URLSearchParams({ csrf, ...fields }).toString();
    const target = "/admin/commands/sms/sms-unassign";
    const answers = [
      await post(target, form({ number: OWN, padding: "x".repeat(20_000) }), { cookie }),
      await post(target, form({ number: OWN, extra: "1" }), { cookie }),
      await post(target, form({ number: "y".repeat(2000) }), { cookie }),
      await post(target, `csrf=${encodeURIComponent(csrf)}&%%%&&&=`, { cookie }),
      await fetch(`${base}${target}`, {
        method: "POST",
        body: "{not json",
        headers: { cookie, "content-type": "application/json" },
      }),
      await fetch(`${base}/admin/api/commands/sms/sms-unassign`, {
        method: "POST",
        body: "{not json",
        headers: { "content-type": "application/json", ...bearer },
      }),
      await api("/admin/api/commands/sms/sms-unassign", { number: "not a number" }),
    ];
    for (const answer of answers) expect(answer.status, await answer.text()).toBe(400);
    expect((await numbers()).form.fields.find((f) => f.var === "dedicated")?.value).toHaveLength(1);
  });

  it("sends a test message from the gateway to a JID (also an XMPP admin command)", async () => {
    const bob = await TestUser.login(peer, `bob-adm-${smsDomain.split(".")[0]}`);
    users.push(bob);
    const answer = await api("/admin/api/commands/echo/send-test-message", {
      jid: bob.bare,
      text: "ping from ops",
    });
    expect(answer.status).toBe(200);
    const message = await bob.waitFor((el) => el.getChildText("body") === "ping from ops");
    expect(message.attrs.from).toBe(echoDomain);
  });

  it("shows recent errors without message bodies", async () => {
    const forged = await fake.sendInbound({
      from: "+12025550499",
      to: POOL[0]!,
      body: "confidential body text",
      webhookUrl: `${publicBase}/sms/twilio/sms`,
      forge: true,
    });
    expect(forged.status).toBe(403);
    const { cookie } = await login();
    const page = await (await get("/admin", { cookie })).text();
    expect(page).toContain("webhook with an invalid signature refused");
    expect(page).not.toContain("confidential body text");
  });

  it("works from the command line: status, commands, command", async () => {
    const config = path.join(dir, "cli.json");
    await writeFile(config, JSON.stringify({ http: { admin: { tokenEnv: "CLI_ADMIN_TOKEN" } } }));
    const cli = async (args: string[], token = ADMIN_TOKEN) => {
      const child = spawn(process.execPath, [requireDist(), ...args, "--config", config, "--url", base], {
        cwd: ROOT,
        env: { ...process.env, CLI_ADMIN_TOKEN: token },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const [code] = (await once(child, "exit")) as [number];
      return { code, out };
    };
    const status = await cli(["status"]);
    expect(status).toMatchObject({ code: 0 });
    expect(status.out).toContain("xmpp:sms: online");
    const list = await cli(["commands"]);
    expect(list.out).toContain("sms sms-assign");
    expect(list.out).toContain("echo send-test-message");
    const done = await cli(["command", "sms", "sms-unassign", `number=${OWN}`]);
    expect(done).toMatchObject({ code: 0 });
    expect(done.out).toContain(`${OWN} no longer belongs to anyone`);
    const refused = await cli(["command", "sms", "sms-unassign", "number=12"]);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("is not an E.164 number");
    expect((await cli(["commands"], "wrong-token")).code).toBe(2);
  });

  it("is served on the private listener only: the public one answers 404", async () => {
    for (const path of ["/admin", "/admin/api/status", "/metrics", "/readyz", "/healthz"]) {
      expect((await fetch(`${publicBase}${path}`, { headers: bearer })).status, path).toBe(404);
      expect((await fetch(`${base}${path}`, { headers: bearer })).status, path).toBe(200);
    }
  });

  it("stops trying tokens after too many failures from one address", async () => {
    // Earlier tests already spent some of this address's attempts: at most the allowance remains.
    const statuses: number[] = [];
    for (let i = 0; i < LOGIN_FAILURES_ALLOWED; i++)
      statuses.push((await post("/admin/login", "token=guess")).status);
    expect(statuses[0]).toBe(401);
    expect(statuses.at(-1)).toBe(429);
    const blocked = await post("/admin/login", `token=${ADMIN_TOKEN}`);
    expect(blocked.status).toBe(429);
    expect((await get("/admin/api/status", bearer)).status).toBe(429);
  });
});
