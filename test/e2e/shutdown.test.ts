/**
 * Stopping the compiled gateway (a process, as systemd runs it) while mail is on its way: SIGTERM lets the
 * sends in flight end (the relay's 250 becomes a receipt), tells a user who writes meanwhile to send again,
 * and exits 0; a second SIGTERM exits at once. The relay is a real smtp-server on loopback that holds its
 * answer to DATA until the test lets it go.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../bed/index.js";
import { slotDomain, TEST_SECRET } from "../slots.js";
import { errorOf, registration, TestUser, xml } from "../support/client.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { smtpServer } from "../support/relay.js";

const RECEIPTS = "urn:xmpp:receipts";

describe("stopping while mail is on its way", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let dir: string;
  let relay: SMTPServer;
  /** Subjects of the mails the relay took (answered 250). */
  const accepted: string[] = [];
  /** Answers the relay holds back, released by release(). */
  let held: (() => void)[] = [];
  let holding = true;
  const release = () => {
    holding = false;
    for (const answer of held) answer();
    held = [];
  };
  const cleanup: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gw-shutdown-"));
    relay = smtpServer({
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      logger: false,
      onData(stream, _session, callback) {
        let raw = "";
        stream.on("data", (d: Buffer) => (raw += d.toString()));
        stream.on("end", () => {
          const answer = () => {
            accepted.push(/^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? "");
            callback();
          };
          if (holding) held.push(answer);
          else answer();
        });
      },
    });
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    release();
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    if (process.env.KEEP) console.log("DIR", dir);
    else await rm(dir, { recursive: true, force: true });
  });

  /** A gateway process with the email adapter on its own slot, and a registered user of it. */
  async function start(name: string): Promise<{ gw: GatewayProcess; user: TestUser; domain: string }> {
    const slot = await takeSlot(bed);
    const domain = slotDomain(slot, "mail");
    const config = testConfig({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: `shutdown-${slot}:`,
      adapters: {
        email: {
          mailDomain: `${name}.example.org`,
          relay: {
            host: "127.0.0.1",
            port: (relay.server.address() as { port: number }).port,
            starttls: false,
            timeoutSeconds: 120,
          },
          inbound: { port: await freePort() },
        },
      },
    });
    const gw = await spawnGateway({ dir, name, config, env: { TEST_ECHO_SECRET: TEST_SECRET } });
    cleanup.push(() => gw.kill("SIGKILL"));
    await gw.waitLog("component stream online", { where: (l) => l.adapter === "email" });
    const user = await TestUser.login(peer, `${name}-${slot}`);
    cleanup.push(() => user.stop());
    const reg = await user.iq("set", domain, registration({ alias: `${name}-${slot}` }));
    expect(reg.attrs.type, user.dump()).toBe("result");
    return { gw, user, domain };
  }

  const mail = (user: TestUser, domain: string, id: string) =>
    user.send(
      xml(
        "message",
        { to: `friend\\40example.com@${domain}`, id, type: "chat" },
        xml("subject", {}, id),
        xml("body", {}, `mail ${id}`),
        xml("request", { xmlns: RECEIPTS }),
      ),
    );
  const receiptFor = (user: TestUser, id: string) =>
    user.waitFor((el) => el.getChild("received", RECEIPTS)?.attrs.id === id, 30_000);
  const exitOf = (gw: GatewayProcess) =>
    new Promise<number | null>((resolve) => {
      if (gw.child.exitCode !== null) resolve(gw.child.exitCode);
      else gw.child.once("exit", (code) => resolve(code));
    });

  it(
    "on SIGTERM, finishes the mails in flight (each with its receipt), refuses new ones, and exits 0",
    {
      timeout: 90_000,
    },
    async () => {
      holding = true;
      const { gw, user, domain } = await start("drain");
      const ids = ["drain-1", "drain-2", "drain-3"];
      for (const id of ids) await mail(user, domain, id);
      // The first mail is with the relay, which has not answered yet; the others wait for it.
      await expect.poll(() => held.length, { timeout: 30_000 }).toBeGreaterThan(0);

      const exited = exitOf(gw);
      gw.child.kill("SIGTERM");
      await gw.waitLog("stopping");
      // Written while the gateway stops: not sent, and the user is told to send it again.
      await mail(user, domain, "too-late");
      const refused = await user.waitFor((el) => el.attrs.id === "too-late" && el.attrs.type === "error");
      expect(errorOf(refused).text).toMatch(/restarting/);

      release();
      for (const id of ids) await receiptFor(user, id);
      expect(await exited).toBe(0);
      expect(accepted.filter((s) => s.startsWith("drain-")).sort()).toEqual(ids);
      expect(accepted).not.toContain("too-late");
    },
  );

  it("on a second SIGTERM, exits at once without waiting for the relay", async () => {
    holding = true;
    const { gw, user, domain } = await start("twice");
    await mail(user, domain, "twice-1");
    await expect.poll(() => held.length, { timeout: 30_000 }).toBe(1);

    const exited = exitOf(gw);
    gw.child.kill("SIGTERM");
    await gw.waitLog("stopping");
    gw.child.kill("SIGTERM");
    // The relay still holds its answer: only the second signal can have ended the process.
    expect(await exited).toBe(143);
    expect(held).toHaveLength(1);
  });
});
