import { describe, expect, it } from "vitest";
import { z } from "zod";
import { readFileSync } from "node:fs";
import { ConfigError, parseConfig } from "../../src/config/load.js";
import { adapterChecks, adapterSchemas } from "../../src/compose.js";

const committed: unknown = JSON.parse(
  readFileSync(new URL("../../gateway.config.json", import.meta.url), "utf8"),
);

/** Every secret the committed config names. */
const QUICKSTART_ENV = {
  GATEWAY_ECHO_SECRET: "s3cret",
  GATEWAY_SMS_SECRET: "s4",
  TWILIO_AUTH_TOKEN: "tok",
  GATEWAY_EMAIL_SECRET: "s5",
  GATEWAY_IRC_SECRET: "s6",
};

function problems(raw: unknown, env: NodeJS.ProcessEnv = { GATEWAY_ECHO_SECRET: "s" }): string[] {
  try {
    parseConfig("test.json", raw, adapterSchemas, env, adapterChecks);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("configuration", () => {
  it("accepts the committed quickstart config and fills in defaults", () => {
    const { config, secrets, adapterSecrets } = parseConfig(
      "gateway.config.json",
      committed,
      adapterSchemas,
      QUICKSTART_ENV,
    );
    expect(secrets).toEqual({ echo: "s3cret", sms: "s4", irc: "s6", email: "s5" });
    expect(adapterSecrets).toEqual({ TWILIO_AUTH_TOKEN: "tok" });
    expect(config.xmpp.keepaliveSeconds).toBe(60);
    expect(config.limits.idempotencyHours).toBe(24);
    expect(config.adapters.echo?.enabled).toBe(true);
  });

  it("balances nothing by default, and refuses a death noticed before two heartbeats", () => {
    const base = {
      xmpp: { serverDomains: ["localhost"] },
      adapters: { echo: { domain: "e.localhost", secretEnv: "GATEWAY_ECHO_SECRET" } },
    };
    const { config } = parseConfig("test.json", base, adapterSchemas, { GATEWAY_ECHO_SECRET: "s" });
    expect(config.xmpp.balancing).toEqual({ enabled: false, heartbeatSeconds: 2, deadAfterSeconds: 10 });
    const tight = { enabled: true, heartbeatSeconds: 5, deadAfterSeconds: 8 };
    expect(problems({ ...base, xmpp: { ...base.xmpp, balancing: tight } })).toEqual([
      "xmpp.balancing.deadAfterSeconds: deadAfterSeconds must be at least twice heartbeatSeconds",
    ]);
  });

  it("puts health, metrics and admin on a private loopback listener, and trusts no proxy, by default", () => {
    const base = {
      xmpp: { serverDomains: ["localhost"] },
      adapters: { echo: { domain: "e.localhost", secretEnv: "GATEWAY_ECHO_SECRET" } },
    };
    const { config } = parseConfig("test.json", base, adapterSchemas, { GATEWAY_ECHO_SECRET: "s" });
    expect(config.http).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      private: { host: "127.0.0.1", port: 8081 },
      trustedProxies: [],
    });
    // An old config with only http.port keeps its webhooks there, and gets the private listener beside it.
    const old = parseConfig("test.json", { ...base, http: { port: 9000 } }, adapterSchemas, {
      GATEWAY_ECHO_SECRET: "s",
    });
    expect(old.config.http).toMatchObject({ port: 9000, private: { port: 8081 } });
    expect(problems({ ...base, http: { port: 8081 } })).toEqual([
      expect.stringContaining("http.private.port"),
    ]);
    expect(
      problems({ ...base, http: { trustedProxies: ["10.0.0.0/8", "::1", "proxy.example.org"] } }),
    ).toEqual([expect.stringContaining("http.trustedProxies.2")]);
    expect(problems({ ...base, http: { trustedProxies: ["127.0.0.1", "10.0.0.0/8", "fd00::/8"] } })).toEqual(
      [],
    );
  });

  it("names the environment variable of a missing secret", () => {
    expect(problems(committed, {})).toEqual([
      "adapters.echo.secretEnv: environment variable GATEWAY_ECHO_SECRET is not set",
      "adapters.email.secretEnv: environment variable GATEWAY_EMAIL_SECRET is not set",
      "adapters.irc.secretEnv: environment variable GATEWAY_IRC_SECRET is not set",
      "adapters.sms.secretEnv: environment variable GATEWAY_SMS_SECRET is not set",
      "adapters.sms.twilio.authTokenEnv: environment variable TWILIO_AUTH_TOKEN is not set",
    ]);
  });

  it("reports every bad field with its path and what was expected", () => {
    const found = problems({
      xmpp: { service: "localhost:5347", serverDomains: ["Example.ORG"], keepaliveSeconds: "60" },
      admins: ["not a jid"],
      adapters: { echo: { domain: "echo.localhost", secretEnv: "lower" }, smtp: {} },
    });
    const paths = found.map((p) => p.split(":")[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        "xmpp.service",
        "xmpp.serverDomains.0",
        "xmpp.keepaliveSeconds",
        "admins.0",
        "adapters.echo.secretEnv",
        "adapters",
      ]),
    );
    expect(found.find((p) => p.startsWith("xmpp.service"))).toContain("xmpp://HOST:PORT");
    expect(found.find((p) => p.startsWith("adapters:"))).toContain("smtp");
  });

  it("refuses two adapters on one domain and a config with none enabled", () => {
    expect(problems({ xmpp: { serverDomains: ["localhost"] }, adapters: {} })).toEqual([
      "adapters: no adapter is enabled",
    ]);
  });

  it("requires every secret an adapter names by an …Env field, and hands it over", () => {
    const schemas = { fake: z.object({ api: z.object({ tokenEnv: z.string() }) }) };
    const raw = {
      xmpp: { serverDomains: ["localhost"] },
      adapters: {
        fake: { domain: "fake.localhost", secretEnv: "FAKE_SECRET", api: { tokenEnv: "FAKE_TOKEN" } },
      },
    };
    expect(() => parseConfig("t.json", raw, schemas, { FAKE_SECRET: "s" })).toThrow(ConfigError);
    try {
      parseConfig("t.json", raw, schemas, { FAKE_SECRET: "s" });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([
        "adapters.fake.api.tokenEnv: environment variable FAKE_TOKEN is not set",
      ]);
    }
    const loaded = parseConfig("t.json", raw, schemas, { FAKE_SECRET: "s", FAKE_TOKEN: "tok" });
    expect(loaded.adapterSecrets).toEqual({ FAKE_TOKEN: "tok" });
  });

  it("takes a Redis Cluster's seed nodes, alone, and a key prefix without hash-tag braces", () => {
    const base = {
      xmpp: { serverDomains: ["localhost"] },
      adapters: { echo: { domain: "e.localhost", secretEnv: "GATEWAY_ECHO_SECRET" } },
    };
    const withRedis = (redis: object) => problems({ ...base, redis });
    expect(withRedis({ cluster: ["127.0.0.1:7000", "redis-b.example.org:7001", "[::1]:7002"] })).toEqual([]);
    expect(withRedis({ cluster: ["127.0.0.1"] })).toEqual([
      "redis.cluster.0: expected HOST:PORT (an IPv6 address in brackets)",
    ]);
    const alone =
      "redis.cluster: redis.cluster names the whole store: leave out redis.url and redis.sentinels with it";
    expect(withRedis({ cluster: ["127.0.0.1:7000"], url: "redis://127.0.0.1:6379" })).toEqual([alone]);
    expect(
      withRedis({
        cluster: ["127.0.0.1:7000"],
        sentinels: [{ host: "127.0.0.1", port: 26379 }],
        masterName: "m",
      }),
    ).toEqual([alone]);
    expect(withRedis({ keyPrefix: "gw{1}:" })).toEqual([
      "redis.keyPrefix: must not contain { or }: the gateway puts its own hash tags in key names (Redis Cluster)",
    ]);
  });

  describe("fields that must agree with each other", () => {
    type Raw = Record<string, Record<string, unknown>>;
    /** The committed config with some fields changed. */
    const changed = (edit: (raw: Raw) => void): Raw => {
      const raw = structuredClone(committed) as Raw;
      edit(raw);
      return raw;
    };
    const sms = (raw: Raw) => (raw.adapters!.sms as { numbers: Record<string, unknown> }).numbers;
    const email = (raw: Raw) => raw.adapters!.email as Record<string, Record<string, unknown>>;

    it("refuses a number that is both dedicated and in the pool, and a user with two own numbers", () => {
      const found = problems(
        changed((raw) => {
          sms(raw).dedicated = { "+12025550100": "alice@localhost", "+12025550191": "alice@localhost" };
        }),
        QUICKSTART_ENV,
      );
      expect(found).toEqual([
        "adapters.sms.numbers.pool.1: +12025550191 is also in numbers.dedicated; a number is either dedicated or shared",
        "adapters.sms.numbers.dedicated.+12025550191: alice@localhost already has +12025550100; a user has at most one dedicated number",
      ]);
    });

    it("says a national-format number must be E.164, naming the field", () => {
      const found = problems(
        changed((raw) => {
          sms(raw).dedicated = { "2025550123": "alice@localhost" };
          sms(raw).pool = ["(202) 555-0124"];
        }),
        QUICKSTART_ENV,
      );
      expect(found).toEqual([
        "adapters.sms.numbers.dedicated.2025550123: expected an E.164 number, +<country><number>, e.g. +12025550123 (not a national format)",
        "adapters.sms.numbers.pool.0: expected an E.164 number, +<country><number>, e.g. +12025550123 (not a national format)",
      ]);
    });

    it("refuses two listeners on one address, naming both fields", () => {
      const clash = (http: Record<string, unknown>, inbound: Record<string, unknown>) =>
        problems(
          changed((raw) => {
            raw.http = http;
            email(raw).inbound = inbound;
          }),
          QUICKSTART_ENV,
        );
      expect(clash({ port: 2525 }, { port: 2525 })).toEqual([
        "adapters.email.inbound.port: 127.0.0.1:2525 is also the address of http.port (127.0.0.1:2525); two listeners cannot share a port",
      ]);
      // A wildcard bind takes the port on every address of its family.
      expect(clash({ host: "0.0.0.0", port: 2525 }, { host: "127.0.0.1", port: 2525 })).toHaveLength(1);
      expect(clash({ host: "::", port: 2525 }, { host: "127.0.0.1", port: 2525 })).toHaveLength(1);
      expect(clash({ host: "localhost", port: 2525 }, { host: "::1", port: 2525 })).toHaveLength(1);
      // Different addresses, different ports, a free port picked at start, or HTTP off: no clash.
      expect(clash({ host: "127.0.0.2", port: 2525 }, { host: "127.0.0.1", port: 2525 })).toEqual([]);
      expect(clash({ host: "0.0.0.0", port: 2525 }, { host: "::1", port: 2525 })).toEqual([]);
      expect(clash({ port: 8080 }, { port: 2525 })).toEqual([]);
      expect(clash({ port: 0 }, { port: 2525 })).toEqual([]);
      expect(clash({ enabled: false, port: 2525 }, { port: 2525 })).toEqual([]);
    });

    it("takes an IPv6 relay with or without brackets, and refuses what is no host", () => {
      for (const host of ["::1", "[::1]", "2001:db8::25", "[2001:db8::25]", "127.0.0.1", "smtp.example.org"])
        expect(
          problems(
            changed((raw) => (email(raw).relay!.host = host)),
            QUICKSTART_ENV,
          ),
          host,
        ).toEqual([]);
      for (const host of ["[::1", "::g", "smtp example", "[smtp.example.org]"])
        expect(
          problems(
            changed((raw) => (email(raw).relay!.host = host)),
            QUICKSTART_ENV,
          ),
        ).toEqual([
          "adapters.email.relay.host: expected a host name such as smtp.example.org, an IPv4 address, or an IPv6 address (::1 or [::1])",
        ]);
    });
  });
});
