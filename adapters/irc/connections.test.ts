/**
 * The connection table: shared per (user, server), capped per server, closed after the grace period.
 * Connections go to a closed loopback port: nothing here needs an IRC server.
 */
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayError } from "../../src/xmpp/errors.js";
import { ircConfigSchema } from "./config.js";
import { IrcConnections } from "./connections.js";
import { ircd, scripted } from "../../test/support/scripted-ircd.js";

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

  it("redials a connection lost while the user is in a channel, under another session, and joins it again with the same forwarding", async () => {
    const server = await scripted(ircd(SERVER));
    try {
      const config = ircConfigSchema.parse({
        servers: { allow: [SERVER] },
        addresses: { [SERVER]: { host: "127.0.0.1", port: server.port, tls: false } },
        lineDelayMs: 0,
      });
      const log = pino({ level: "silent" });
      const redialing: string[] = [];
      open = new IrcConnections({
        config,
        log: () => log,
        deliver: () => undefined,
        redialing: (s) => redialing.push(s.user),
      });
      const first = open.open("alice@example.org", SERVER, "alice");
      first.addMember("#chat", "alice@example.org/phone", { roomJid: "#chat%x@y", requestedNick: "alice" });
      first.setMentionsOnly(new Set(["#chat"]));
      await first.ready;
      server.drop();
      await vi.waitFor(() => expect(open?.get("alice@example.org", SERVER)).not.toBe(first), 5_000);
      expect(first.closed).toBe(true);
      const next = open.get("alice@example.org", SERVER);
      await next?.ready;
      expect(redialing).toEqual(["alice@example.org"]);
      expect(next?.channels.has("#chat")).toBe(true);
      // The user's forwarding choice (mentions only) holds on the new connection too.
      expect(next?.mentionsOnly("#chat")).toBe(true);
      await vi.waitFor(() => expect(server.written.filter((l) => l === "JOIN #chat")).toHaveLength(1), 5_000);
    } finally {
      server.close();
    }
  });
});
