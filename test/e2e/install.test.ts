/**
 * The gateway as an administrator installs it: `npm pack`, then `npm install -g` of the tarball into a
 * private prefix (production dependencies only, fetched from the registry or npm's cache), then the
 * installed `xmpp-gateway` command checks the example config, runs with every adapter on against the test
 * bed, and reports its status.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bed/index.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { sharedBed, takeSlot } from "../support/gateway.js";
import { requireDist } from "../support/dist.js";
import { runGatewayCommand, spawnGateway, type GatewayProcess } from "../support/process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
/** Installing fetches the production dependencies: slow on a cold cache or a busy machine. */
const INSTALL_TIMEOUT_MS = 300_000;

/**
 * The installed command starts with `#!/usr/bin/env node`: the node running this test comes first in PATH,
 * so the command runs on the Node under test, not on an older one of the machine.
 */
const NODE_FIRST = { PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}` };

/** Runs the installed command to its end. */
const cli = (bin: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runGatewayCommand(args, { ...NODE_FIRST, ...env }, bin);

describe("the packed tarball, installed with npm install -g", () => {
  let dir: string;
  let bin: string;
  let prefix: string;
  let gw: GatewayProcess | undefined;

  beforeAll(async () => {
    requireDist();
    dir = await mkdtemp(path.join(tmpdir(), "gw-install-"));
    // dist/ is fresh (the test command built it): packing does not build again under the other tests' feet.
    await run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", dir], { cwd: ROOT });
    const tarball = (await readdir(dir)).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
    prefix = path.join(dir, "prefix");
    await run(
      "npm",
      [
        "install",
        "-g",
        "--prefix",
        prefix,
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        path.join(dir, tarball),
      ],
      { cwd: dir, timeout: INSTALL_TIMEOUT_MS, env: { ...process.env, ...NODE_FIRST } },
    );
    bin = path.join(prefix, "bin", "xmpp-gateway");
  }, INSTALL_TIMEOUT_MS + 60_000);

  afterAll(async () => {
    await gw?.kill("SIGTERM");
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("holds the compiled product and its production dependencies, not the tests or the dev tools", async () => {
    const pkg = path.join(prefix, "lib", "node_modules", "xmpp-gateway");
    const top = await readdir(pkg);
    expect(top).toEqual(expect.arrayContaining(["dist", "README.md", "docs", "gateway.config.json"]));
    for (const absent of ["src", "test", "bench", "scripts"]) expect(top).not.toContain(absent);
    expect(await readdir(path.join(pkg, "dist"))).toEqual(expect.arrayContaining(["src", "adapters"]));
    const deps = await readdir(path.join(pkg, "node_modules"));
    expect(deps).toEqual(expect.arrayContaining(["twilio", "mailauth", "fastify", "ioredis"]));
    for (const dev of ["vitest", "tsx", "typescript", "eslint"]) expect(deps).not.toContain(dev);
  });

  it("checks the example config", async () => {
    const { code, stdout, stderr } = await cli(
      bin,
      ["--check-config", "--config", path.join(ROOT, "gateway.config.json")],
      {
        GATEWAY_ECHO_SECRET: "x",
        GATEWAY_SMS_SECRET: "y",
        TWILIO_AUTH_TOKEN: "z",
        GATEWAY_EMAIL_SECRET: "w",
        GATEWAY_IRC_SECRET: "v",
      },
    );
    expect(stderr).toBe("");
    expect(stdout).toContain("configuration is valid; adapters: echo (echo.localhost)");
    expect(code).toBe(0);
  });

  it("runs with every adapter on, and its status command says it is ready", async () => {
    const bed = sharedBed();
    const peer = bed.prosody!;
    const slot = await takeSlot(bed);
    const example = JSON.parse(await readFile(path.join(ROOT, "gateway.config.json"), "utf8")) as {
      adapters: Record<string, Record<string, unknown>>;
    };
    const { echo, sms, irc, email } = example.adapters;
    const config = {
      xmpp: { service: `xmpp://127.0.0.1:${peer.componentPort}`, serverDomains: [peer.host] },
      redis: { url: bed.redis!.url, keyPrefix: `install-${slot}:` },
      instanceId: `install-${slot}`,
      adapters: {
        echo: { ...echo, domain: slotDomain(slot, "echo"), secretEnv: "GW_SECRET" },
        sms: { ...sms, domain: slotDomain(slot, "sms"), secretEnv: "GW_SECRET" },
        irc: {
          ...irc,
          domain: slotDomain(slot, "irc"),
          secretEnv: "GW_SECRET",
          addresses: { "irc.localhost": { host: "127.0.0.1", port: bed.irc!.port, tls: false } },
        },
        email: {
          ...email,
          domain: slotDomain(slot, "mail"),
          secretEnv: "GW_SECRET",
          inbound: { port: await freePort() },
        },
      },
    };
    gw = await spawnGateway({
      dir,
      name: "installed",
      config,
      env: { ...NODE_FIRST, GW_SECRET: TEST_SECRET, TWILIO_AUTH_TOKEN: "token" },
      command: bin,
    });
    for (const adapter of ["echo", "sms", "irc", "email"])
      await gw.waitLog("component stream online", { where: (l) => l.adapter === adapter, timeoutMs: 60_000 });

    const status = await cli(bin, ["status", "--url", `http://127.0.0.1:${gw.privatePort}`]);
    expect(status.stdout).toContain("ready");
    expect(status.stdout).toContain("xmpp:irc: online");
    expect(status.code).toBe(0);
  });
});
