import { describe, expect, it } from "vitest";
import {
  addressOf,
  DEFAULT_FLOOD_BURST,
  DEFAULT_GRACE_SECONDS,
  DEFAULT_MAX_QUEUED_LINES,
  DEFAULT_SERVICES,
  ircConfigSchema,
  isServerAllowed,
  PLAIN_PORT,
  serverPolicy,
  TLS_PORT,
} from "./config.js";

describe("IRC config", () => {
  it("defaults to TLS on 6697, a grace period before QUIT and no aliases", () => {
    const config = ircConfigSchema.parse({ servers: { allow: ["irc.libera.chat"] } });
    expect(config).toMatchObject({ tls: true, graceSeconds: DEFAULT_GRACE_SECONDS, addresses: {} });
    expect(addressOf(config, "irc.libera.chat")).toEqual({
      host: "irc.libera.chat",
      port: TLS_PORT,
      tls: true,
    });
  });

  it.each([
    [{ tls: false }, "irc.example.net", { host: "irc.example.net", port: PLAIN_PORT, tls: false }],
    [{ tls: true, port: 7000 }, "irc.example.net", { host: "irc.example.net", port: 7000, tls: true }],
    [
      { addresses: { "irc.localhost": { host: "127.0.0.1", port: 16667, tls: false } } },
      "irc.localhost",
      { host: "127.0.0.1", port: 16667, tls: false },
    ],
  ])("connects as %o says for %s", (fields, server, expected) => {
    const config = ircConfigSchema.parse({ servers: { allow: [server] }, ...fields });
    expect(addressOf(config, server)).toEqual(expected);
  });

  it("lowercases allowed server names and refuses invalid ones with the reason", () => {
    const config = ircConfigSchema.parse({ servers: { allow: ["IRC.Libera.Chat"] } });
    expect(isServerAllowed(config, "irc.libera.chat")).toBe(true);
    expect(isServerAllowed(config, "irc.oftc.net")).toBe(false);
    const bad = ircConfigSchema.safeParse({ servers: { allow: ["irc.libera.chat:6697"] } });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain("port");
  });

  it("takes flood control and services per server from its overrides, else from the adapter's", () => {
    const config = ircConfigSchema.parse({
      servers: { allow: ["a.net", "b.net"] },
      lineDelayMs: 500,
      addresses: {
        "b.net": {
          host: "b.net",
          lineDelayMs: 2000,
          maxQueuedLines: 40,
          services: { host: "services.b.net" },
        },
      },
    });
    expect(serverPolicy(config, "a.net")).toEqual({
      lineDelayMs: 500,
      floodBurst: DEFAULT_FLOOD_BURST,
      maxQueuedLines: DEFAULT_MAX_QUEUED_LINES,
      services: DEFAULT_SERVICES,
    });
    expect(serverPolicy(config, "b.net")).toMatchObject({
      lineDelayMs: 2000,
      maxQueuedLines: 40,
      services: { nick: "NickServ", host: "services.b.net" },
    });
  });

  it("allows only the fixed server in fixed-server mode", () => {
    const config = ircConfigSchema.parse({ servers: { fixed: "irc.example.net" } });
    expect(isServerAllowed(config, "irc.example.net")).toBe(true);
    expect(isServerAllowed(config, "irc.libera.chat")).toBe(false);
  });

  it.each([
    [{ servers: {} }],
    [{ servers: { allow: [] } }],
    [{ servers: { allow: ["a.b"] }, userName: "has space" }],
    [{ servers: { allow: ["a.b"] }, realName: "line\r\nQUIT" }],
    [{ servers: { allow: ["a.b"] }, graceSeconds: -1 }],
    // A queue that cannot hold one message of the most lines a body splits into.
    [{ servers: { allow: ["a.b"] }, maxQueuedLines: 5 }],
    // NickServ trusted wherever it is: no password check at all.
    [{ servers: { allow: ["a.b"] }, services: { nick: "NickServ", server: "*" } }],
    [{ servers: { allow: ["a.b"] }, services: { nick: "NickServ" } }],
    [{ servers: { allow: ["a.b"] }, passwordKeysEnv: "lower-case" }],
  ])("refuses %o", (input) => {
    expect(ircConfigSchema.safeParse(input).success).toBe(false);
  });
});
