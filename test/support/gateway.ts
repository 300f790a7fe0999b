/**
 * Runs the real gateway in the test process, wired to the shared test bed (or to private servers), and
 * hands out slots so parallel test files never share a component domain.
 */
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { attach, type Bed, type XmppPeer } from "../bed/index.js";
import { SLOTS, SLOT_ADAPTERS, TEST_SECRET, slotDomain } from "../slots.js";
import { parseConfig } from "../../src/config/load.js";
import { adapterSchemas, createGateway } from "../../src/compose.js";
import { createLogger } from "../../src/log.js";
import { RecentErrors } from "../../src/http/recent-errors.js";
import type { Gateway } from "../../src/gateway.js";

export function sharedBed(): Bed {
  return attach(inject("bed"));
}

/** A slot number unique in this run (taken from the shared Redis). */
export async function takeSlot(bed: Bed): Promise<number> {
  if (!bed.redis) throw new Error("the test bed has no Redis");
  const redis = new Redis(bed.redis.url);
  try {
    const slot = await redis.incr("test:slots");
    if (slot > SLOTS) throw new Error(`all ${SLOTS} component slots are taken; raise SLOTS in test/slots.ts`);
    return slot;
  } finally {
    redis.disconnect();
  }
}

/**
 * The IRC adapter's fields for plain-text IRC servers on 127.0.0.1 (name → port), every one allowed, with
 * no line delay; spread it and add the test's own fields.
 */
export function plainIrc(servers: Record<string, number>) {
  return {
    servers: { allow: Object.keys(servers) },
    tls: false,
    addresses: Object.fromEntries(
      Object.entries(servers).map(([name, port]) => [name, { host: "127.0.0.1", port }]),
    ),
    lineDelayMs: 0,
  };
}

export interface TestGatewayOptions {
  peer: XmppPeer;
  redisUrl: string;
  slot: number;
  admins?: string[];
  /** Extra fields for the echo adapter's config (access, requireRegistration…). */
  echo?: Record<string, unknown>;
  /** Adapters other than echo, by config key, with their own fields (domain and secret are filled in). */
  adapters?: Record<string, Record<string, unknown>>;
  /** Extra fields of the http section (e.g. publicUrl). */
  http?: Record<string, unknown>;
  /** Extra environment for the config (adapters' …Env secrets). */
  env?: Record<string, string>;
  keyPrefix?: string;
  instanceId?: string;
  /** Wait until every component stream is online (default true). */
  waitOnline?: boolean;
  logDir?: string;
}

/**
 * The gateway with the IRC adapter (`irc`: its fields, domain and secret filled in) on `slot`, wired to the
 * bed's Prosody and Redis.
 */
export function startIrcGateway(
  bed: Bed,
  slot: number,
  irc: Record<string, unknown>,
  opts: Partial<TestGatewayOptions> = {},
): Promise<TestGateway> {
  if (!bed.prosody || !bed.redis) throw new Error("the test bed has no Prosody or no Redis");
  return startTestGateway({
    peer: bed.prosody,
    redisUrl: bed.redis.url,
    slot,
    ...opts,
    adapters: { ...opts.adapters, irc },
  });
}

export interface TestGateway {
  gateway: Gateway;
  domain: string;
  keyPrefix: string;
  stop(): Promise<void>;
}

/** Which slot domain each adapter key gets. */
const SLOT_DOMAIN_OF: Record<string, (typeof SLOT_ADAPTERS)[number]> = {
  sms: "sms",
  email: "mail",
  irc: "irc",
  notify: "alerts",
};

/** Fields every test gives an adapter unless it sets them: email files in the bed's directory, not the repository. */
function testDefaults(key: string, slot: number): Record<string, unknown> {
  if (key !== "email") return {};
  let dir: string;
  try {
    dir = inject("bed").dir;
  } catch {
    dir = tmpdir(); // outside a vitest run (benchmarks)
  }
  return { files: { dir: path.join(dir, `mail-files-${slot}-${randomUUID().slice(0, 8)}`) } };
}

export function testConfig(opts: TestGatewayOptions & { keyPrefix: string }) {
  return {
    xmpp: {
      service: `xmpp://127.0.0.1:${opts.peer.componentPort}`,
      serverDomains: [opts.peer.host],
      reconnectMaxSeconds: 2,
      conflictRetrySeconds: 1,
    },
    redis: { url: opts.redisUrl, keyPrefix: opts.keyPrefix },
    http: {
      port: 0,
      ...opts.http,
      private: { port: 0, ...(opts.http?.private as Record<string, unknown> | undefined) },
    },
    admins: opts.admins ?? [],
    instanceId: opts.instanceId ?? `test-${opts.slot}`,
    adapters: {
      echo: { domain: slotDomain(opts.slot, "echo"), secretEnv: "TEST_ECHO_SECRET", ...opts.echo },
      ...Object.fromEntries(
        Object.entries(opts.adapters ?? {}).map(([key, fields]) => [
          key,
          {
            domain: slotDomain(opts.slot, SLOT_DOMAIN_OF[key] ?? "echo"),
            secretEnv: "TEST_ECHO_SECRET",
            ...testDefaults(key, opts.slot),
            ...fields,
          },
        ]),
      ),
    },
  };
}

export async function startTestGateway(opts: TestGatewayOptions): Promise<TestGateway> {
  const keyPrefix = opts.keyPrefix ?? `t${opts.slot}-${randomUUID().slice(0, 8)}:`;
  const loaded = parseConfig("test", testConfig({ ...opts, keyPrefix }), adapterSchemas, {
    TEST_ECHO_SECRET: TEST_SECRET,
    ...opts.env,
  });
  const dest = path.join(opts.logDir ?? inject("bed").dir, `gateway-${opts.slot}.log`);
  const recentErrors = new RecentErrors();
  const log = createLogger({
    level: "debug",
    destination: pino.destination({ dest, sync: true }),
    warnings: (level, fields, message) => recentErrors.record(level, fields, message),
  });
  const gateway = await createGateway(loaded, log, { recentErrors });
  await gateway.start();
  if (opts.waitOnline ?? true)
    await Promise.all(
      [...gateway.services.values()].map((s) => s.ctx.link.waitOnline(AbortSignal.timeout(15_000))),
    );
  return { gateway, domain: slotDomain(opts.slot, "echo"), keyPrefix, stop: () => gateway.stop() };
}
