/**
 * The component connection's reconnect policy against a real server: a wrong secret is not retried fast
 * and is explained in the log; a second instance for a domain Prosody already serves waits as a hot standby
 * and takes over when the first goes away.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../src/log.js";
import { ComponentLink, LinkDownError } from "../../src/xmpp/link.js";
import { TEST_SECRET, slotDomain } from "../slots.js";
import { TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot } from "../support/gateway.js";

function capturedLogger() {
  const lines: string[] = [];
  const log = createLogger({
    level: "debug",
    destination: { write: (line: string) => void lines.push(line) },
  });
  return { log, text: () => lines.join("") };
}

describe("component link on Prosody", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let domain: string;
  const links: ComponentLink[] = [];

  function link(secret: string, log: ReturnType<typeof capturedLogger>["log"]): ComponentLink {
    const l = new ComponentLink({
      service: `xmpp://127.0.0.1:${peer.componentPort}`,
      domain,
      secret,
      serverDomain: peer.host,
      log,
      keepaliveMs: 60_000,
      reconnectMaxMs: 30_000,
      conflictRetryMs: 500,
    });
    links.push(l);
    return l;
  }

  beforeAll(async () => {
    domain = slotDomain(await takeSlot(bed), "echo");
  });
  afterAll(async () => {
    await Promise.all(links.map((l) => l.stop()));
  });

  it("says the secret is wrong and does not hammer the server", async () => {
    const { log, text } = capturedLogger();
    const bad = link("not-the-secret", log);
    bad.start();
    await expect.poll(() => text().includes("rejected the secret"), { timeout: 10_000 }).toBe(true);
    expect(bad.isOnline).toBe(false);
    expect(bad.retryDelayMs).toBe(30_000);
    expect(text()).toContain("not-authorized");
    expect(text()).not.toContain("not-the-secret");
    await bad.stop();
  });

  it("waits as a hot standby while another instance holds the domain, then takes over", async () => {
    const first = link(TEST_SECRET, capturedLogger().log);
    first.start();
    await first.waitOnline(AbortSignal.timeout(10_000));

    const standbyLog = capturedLogger();
    const second = link(TEST_SECRET, standbyLog.log);
    second.start();
    await expect.poll(() => standbyLog.text().includes("hot standby"), { timeout: 10_000 }).toBe(true);
    expect(second.isOnline).toBe(false);
    expect(second.retryDelayMs).toBe(500);

    await first.stop();
    await second.waitOnline(AbortSignal.timeout(10_000));
    expect(second.isOnline).toBe(true);
    await second.ping();
    await second.stop();
  });

  it("sends a batch in one go, in order, and only on the connection it was meant for", async () => {
    const l = link(TEST_SECRET, capturedLogger().log);
    l.start();
    await l.waitOnline(AbortSignal.timeout(10_000));
    const alice = await TestUser.login(peer, `batch-${domain.split(".")[0]}`);
    try {
      const bodies = Array.from({ length: 50 }, (_, i) => `batch ${i}`);
      const stanza = (body: string) =>
        xml("message", { to: alice.bare, from: `bot@${domain}`, type: "chat" }, xml("body", {}, body));
      const last = alice.waitFor((el) => el.getChildText("body") === "batch 49");
      await l.sendAll(bodies.map(stanza), l.generation);
      await last;
      const got = alice.received.map((el) => el.getChildText("body")).filter((b) => b?.startsWith("batch "));
      expect(got).toEqual(bodies);

      // After a reconnect, a batch meant for the old connection is refused whole: nothing is written.
      const carried = l.generation;
      const offline = once(l, "offline");
      await l.entity.disconnect(1000);
      await offline;
      await l.waitOnline(AbortSignal.timeout(20_000));
      await expect(l.sendAll([stanza("stale")], carried)).rejects.toBeInstanceOf(LinkDownError);
      await l.sendAll([stanza("fresh")], l.generation);
      await alice.waitFor((el) => el.getChildText("body") === "fresh");
      expect(alice.received.some((el) => el.getChildText("body") === "stale")).toBe(false);
    } finally {
      await alice.stop();
      await l.stop();
    }
  }, 60_000);

  it("fails a ping at once when the stream closes during it, and keeps no listener per ping", async () => {
    const l = link(TEST_SECRET, capturedLogger().log);
    l.start();
    await l.waitOnline(AbortSignal.timeout(10_000));
    try {
      const listeners = l.listenerCount("offline");
      for (let i = 0; i < 20; i++) await l.ping(undefined, l.generation);
      expect(l.listenerCount("offline")).toBe(listeners);

      // Lost once the ping is out, before its pong can be read: LinkDownError now, not at the ping's timeout
      // (a minute from now).
      const socket = l.entity.socket!;
      const written = socket.bytesWritten;
      socket.pause();
      const pinged = l.ping(60_000, l.generation);
      await vi.waitFor(() => expect(socket.bytesWritten).toBeGreaterThan(written));
      socket.destroy();
      await expect(pinged).rejects.toBeInstanceOf(LinkDownError);
      expect(l.listenerCount("offline")).toBe(listeners);
    } finally {
      await l.stop();
    }
  }, 60_000);
});
