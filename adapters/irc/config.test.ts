import { describe, expect, it } from "vitest";
import {
  addressOf,
  DEFAULT_GRACE_SECONDS,
  ircConfigSchema,
  isServerAllowed,
  PLAIN_PORT,
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
  ])("refuses %o", (input) => {
    expect(ircConfigSchema.safeParse(input).success).toBe(false);
  });
});
