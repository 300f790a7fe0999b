/**
 * The gateway as an admin runs it: the command line, a bad config, and a graceful stop on SIGTERM.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_SECRET } from "../slots.js";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { gatewayProcess, runGatewayCommand } from "../support/process.js";
import { requireDist } from "../support/dist.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Every secret the committed config names. */
const QUICKSTART_ENV = {
  GATEWAY_ECHO_SECRET: "x",
  GATEWAY_SMS_SECRET: "y",
  TWILIO_AUTH_TOKEN: "z",
  GATEWAY_EMAIL_SECRET: "w",
  GATEWAY_IRC_SECRET: "v",
};

const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runGatewayCommand(args, env);

describe("command line", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gw-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("exits 2 on a bad config and names every bad field", async () => {
    const file = path.join(dir, "bad.json");
    await writeFile(
      file,
      JSON.stringify({
        xmpp: { serverDomains: ["localhost"], keepaliveSeconds: -1 },
        adapters: { echo: { domain: "echo.localhost" } },
      }),
    );
    const { code, stderr } = await run(["--config", file]);
    expect(code).toBe(2);
    expect(stderr).toContain("xmpp.keepaliveSeconds");
    expect(stderr).toContain("adapters.echo.secretEnv");
  });

  it("exits 2 when the file is not JSON or the secret is missing from the environment", async () => {
    const file = path.join(dir, "broken.json");
    await writeFile(file, "{ not json");
    expect((await run(["--config", file])).code).toBe(2);
    const noSecret = await run(["--check-config", "--config", path.join(ROOT, "gateway.config.json")], {
      GATEWAY_ECHO_SECRET: "",
    });
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain("GATEWAY_ECHO_SECRET is not set");
  });

  it("--check-config exits 2 on what start-up would die on, naming the field, until each is fixed", async () => {
    const committed = JSON.parse(await readFile(path.join(ROOT, "gateway.config.json"), "utf8")) as {
      http?: Record<string, unknown>;
      adapters: Record<string, Record<string, unknown>>;
    };
    const { sms, email } = committed.adapters;
    email!.relay = { host: "::1", port: 2587, starttls: false };
    const file = path.join(dir, "inconsistent.json");
    const check = async (numbers: Record<string, unknown>, httpPort: number) => {
      sms!.numbers = numbers;
      await writeFile(file, JSON.stringify({ ...committed, http: { port: httpPort } }));
      return run(["--check-config", "--config", file], QUICKSTART_ENV);
    };
    const pool = ["+12025550190"];

    const national = await check({ dedicated: { "2025550123": "alice@localhost" }, pool }, 8080);
    expect(national.code).toBe(2);
    expect(national.stderr).toContain(
      "adapters.sms.numbers.dedicated.2025550123: expected an E.164 number, +<country><number>, e.g. +12025550123 (not a national format)",
    );
    const both = await check({ dedicated: { "+12025550190": "alice@localhost" }, pool }, 8080);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("adapters.sms.numbers.pool.0: +12025550190 is also in numbers.dedicated");
    // The HTTP server on the SMTP listener's port (2525 in the committed config).
    const clash = await check({ dedicated: { "+12025550100": "alice@localhost" }, pool }, 2525);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(
      "adapters.email.inbound.port: 127.0.0.1:2525 is also the address of http.port (127.0.0.1:2525)",
    );
    // All fixed; the relay on ::1 was never a problem.
    const ok = await check({ dedicated: { "+12025550100": "alice@localhost" }, pool }, 8080);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
  });

  it("checks the committed quickstart config", async () => {
    const ok = await run(
      ["--check-config", "--config", path.join(ROOT, "gateway.config.json")],
      QUICKSTART_ENV,
    );
    expect(ok.stdout).toContain("configuration is valid");
    expect(ok.code).toBe(0);
  });

  it("answers status and checks a config without loading any adapter's network library", async () => {
    // A module resolve hook (node:module registerHooks) names every package the command imports.
    const trace = path.join(dir, "trace.mjs");
    await writeFile(
      trace,
      `import { registerHooks } from "node:module";
registerHooks({ resolve(specifier, context, next) {
  const resolved = next(specifier, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url);
  if (m) process.stderr.write("IMPORT " + m[1] + "\\n");
  return resolved;
} });
`,
    );
    const imports = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const child = spawn(process.execPath, ["--import", trace, requireDist(), ...args], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      await once(child, "exit");
      return new Set([...stderr.matchAll(/^IMPORT (.+)$/gm)].map((m) => m[1]));
    };
    const heavy = ["twilio", "nodemailer", "mailparser", "mailauth", "smtp-server"];
    // status against a port where nothing listens: the answer is an error, the imports are what count.
    const status = await imports(["status", "--url", "http://127.0.0.1:9"]);
    for (const lib of [...heavy, "ioredis", "@xmpp/component", "fastify", "pino", "zod"])
      expect(status, [...status].join(" ")).not.toContain(lib);
    const check = await imports(["--check-config", "--config", path.join(ROOT, "gateway.config.json")], {
      GATEWAY_ECHO_SECRET: "x",
      GATEWAY_SMS_SECRET: "y",
      TWILIO_AUTH_TOKEN: "z",
      GATEWAY_EMAIL_SECRET: "w",
      GATEWAY_IRC_SECRET: "v",
    });
    expect(check).toContain("zod");
    for (const lib of [...heavy, "ioredis", "@xmpp/component", "fastify"])
      expect(check, [...check].join(" ")).not.toContain(lib);
  });

  it("serves until SIGTERM, then tells registered users it is gone and exits 0", async () => {
    const bed = sharedBed();
    const peer = bed.prosody!;
    const slot = await takeSlot(bed);
    const config = testConfig({ peer, redisUrl: bed.redis!.url, slot, keyPrefix: `cli-${slot}:` });
    const file = path.join(dir, "gw.json");
    await writeFile(
      file,
      JSON.stringify({ ...config, adapters: { echo: { ...config.adapters.echo, secretEnv: "GW_SECRET" } } }),
    );
    const child = gatewayProcess(["--config", file], { GW_SECRET: TEST_SECRET });
    let log = "";
    child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
    const domain = config.adapters.echo.domain;
    const user = await TestUser.login(peer, `cli-user-${slot}`);
    try {
      await expect.poll(() => log.includes("component stream online"), { timeout: 20_000 }).toBe(true);
      const form = xml(
        "x",
        { xmlns: "jabber:x:data", type: "submit" },
        xml("field", { var: "nick" }, xml("value", {}, "Cli")),
      );
      const reg = await user.iq("set", domain, xml("query", { xmlns: "jabber:iq:register" }, form));
      expect(reg.attrs.type).toBe("result");

      child.kill("SIGTERM");
      const [code] = (await once(child, "exit")) as [number];
      expect(code).toBe(0);
      // XEP-0100 §8: unavailable presence to registered users at shutdown.
      await user.waitFor(
        (el) => el.name === "presence" && el.attrs.from === domain && el.attrs.type === "unavailable",
      );
      expect(log).toContain('"msg":"stopped"');
    } finally {
      child.kill("SIGKILL");
      await user.stop();
    }
  });
});
