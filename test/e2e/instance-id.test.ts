/**
 * A running instance id is exclusive: a second gateway started with the id of a live one refuses to start
 * and says how to fix it; after a graceful stop the id is free at once; after a crash (SIGKILL) at once on
 * the same machine (the dead pid is checked), elsewhere once the dead process's lease has expired.
 */
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_SECRET } from "../slots.js";
import { sharedBed, takeSlot, testConfig } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/process.js";
import { Keys } from "../../src/store/keys.js";

describe("instance id", () => {
  const bed = sharedBed();
  let dir: string;
  let slot: number;
  const running: GatewayProcess[] = [];

  async function start(name: string): Promise<GatewayProcess> {
    const config = testConfig({
      peer: bed.prosody!,
      redisUrl: bed.redis!.url,
      slot,
      keyPrefix: `instance-${slot}:`,
      instanceId: `shared-${slot}`,
      echo: { requireRegistration: false },
    });
    const gw = await spawnGateway({ dir, name, config, env: { TEST_ECHO_SECRET: TEST_SECRET } });
    running.push(gw);
    return gw;
  }

  beforeAll(async () => {
    slot = await takeSlot(bed);
    dir = await mkdtemp(path.join(tmpdir(), "gw-instance-"));
  });

  afterAll(async () => {
    await Promise.all(running.map((g) => g.kill("SIGKILL")));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a second process with the id of a live one, and starts at once after a graceful stop", async () => {
    const first = await start("first");
    await first.waitLog("started");

    const second = await start("second");
    const [code] = (await once(second.child, "exit")) as [number | null];
    expect(code).toBe(1);
    const refusal = await second.waitLog("is in use by another running gateway");
    expect(refusal.msg).toContain(`"shared-${slot}"`);
    expect(refusal.msg).toContain('"instanceId"');
    // The first one never noticed.
    expect(first.child.exitCode).toBeNull();

    await first.kill("SIGTERM");
    const third = await start("third");
    await third.waitLog("started", { timeoutMs: 10_000 });
    expect(third.lines.some((l) => String(l.msg).includes("the instance id is held"))).toBe(false);
    await third.kill("SIGTERM");
  }, 90_000);

  it("takes the id over at once from a killed process on the same machine", async () => {
    const crashed = await start("crashed");
    await crashed.waitLog("started");
    await crashed.kill("SIGKILL");
    const restarted = await start("restarted");
    await restarted.waitLog("took the instance id over from a process that is gone");
    await restarted.waitLog("started");
    await restarted.kill("SIGTERM");
  }, 90_000);

  it("takes the id over from a process elsewhere only once its lease expired", async () => {
    const raw = new Redis(bed.redis!.url);
    try {
      const key = new Keys(`instance-${slot}:`).instanceLease(`shared-${slot}`);
      // A holder on another machine that stopped renewing (it crashed, or its host went away).
      await raw.set(key, "elsewhere pid 4242 space other:1 0a1b2c3d", "PX", 15_000);
      const next = await start("after-expiry");
      await next.waitLog("the instance id is held");
      await next.waitLog("started", { timeoutMs: 40_000 });
      expect(await raw.get(key)).toContain(`pid ${next.pid} `);
      await next.kill("SIGTERM");
    } finally {
      raw.disconnect();
    }
  }, 90_000);
});
