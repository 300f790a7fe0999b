/**
 * The connection table: shared per (user, server), capped per server, closed after the grace period.
 * Connections go to a closed loopback port: nothing here needs an IRC server.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayError } from "../../src/xmpp/errors.js";
import { ircConfigSchema } from "./config.js";
import { IrcConnections } from "./connections.js";

const SERVER = "irc.example.net";

function table(fields: Record<string, unknown> = {}) {
  const config = ircConfigSchema.parse({
    servers: { allow: [SERVER] },
    // Port 1 on loopback: refused at once, so no test ever talks to a real network.
    addresses: { [SERVER]: { host: "127.0.0.1", port: 1, tls: false } },
    ...fields,
  });
  const log = pino({ level: "silent" });
  return new IrcConnections({ config, log: () => log, deliver: () => undefined });
}

const refusal = (f: () => unknown): GatewayError => {
  try {
    f();
  } catch (err) {
    if (err instanceof GatewayError) return err;
  }
  throw new Error("expected a GatewayError");
};

describe("IRC connections", () => {
  let open: IrcConnections | undefined;
  afterEach(() => {
    open?.closeAll("test over");
    vi.useRealTimers();
  });

  it("shares one connection between the resources of a user, one per user", () => {
    open = table();
    const first = open.open("alice@example.org", SERVER, "alice");
    expect(open.open("alice@example.org", SERVER, "other")).toBe(first);
    expect(open.open("bob@example.org", SERVER, "bob")).not.toBe(first);
    expect(open.all()).toHaveLength(2);
  });

  it("refuses a connection beyond the per-server cap with a reason, and keeps the others", () => {
    open = table({ maxConnectionsPerServer: 1 });
    open.open("alice@example.org", SERVER, "alice");
    const error = refusal(() => open?.open("bob@example.org", SERVER, "bob"));
    expect(error.condition).toBe("resource-constraint");
    expect(error.message).toContain(SERVER);
    expect(open.all()).toHaveLength(1);
  });

  it("QUITs a connection left with no channel once the grace period is over, not before", () => {
    vi.useFakeTimers();
    open = table({ graceSeconds: 60 });
    const session = open.open("alice@example.org", SERVER, "alice");
    open.release(session);
    vi.advanceTimersByTime(59_000);
    expect(session.closed).toBe(false);
    vi.advanceTimersByTime(1_000);
    expect(session.closed).toBe(true);
    expect(open.get("alice@example.org", SERVER)).toBeUndefined();
  });

  it("keeps a connection whose user rejoins during the grace period, and one still in a channel", () => {
    vi.useFakeTimers();
    open = table({ graceSeconds: 60 });
    const session = open.open("alice@example.org", SERVER, "alice");
    open.release(session);
    vi.advanceTimersByTime(30_000);
    expect(open.open("alice@example.org", SERVER, "alice")).toBe(session);
    vi.advanceTimersByTime(60_000);
    expect(session.closed).toBe(false);
    session.addMember("#chat", "alice@example.org/phone", {
      roomJid: "#chat%irc.example.net@irc.example.org",
      requestedNick: "alice",
    });
    open.release(session);
    vi.advanceTimersByTime(120_000);
    expect(session.closed).toBe(false);
  });
});
