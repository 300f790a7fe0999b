/**
 * The store of inbound mail files against a real Redis and a real directory: quotas per alias and in total,
 * and the sweep that removes expired files and gives their space back.
 */
import { randomUUID } from "node:crypto";
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keys } from "../../src/store/keys.js";
import { DirectoryStore } from "../../adapters/email/file-store.js";
import { FileRefused, MailFiles } from "../../adapters/email/files.js";
import type { HttpContext } from "../../src/adapter.js";
import { sharedBed } from "../support/gateway.js";

const TTL_SECONDS = 3600;

describe("mail file store", () => {
  const bed = sharedBed();
  let redis: Redis;
  let dir: string;
  let files: MailFiles;
  const prefix = `mf-${randomUUID().slice(0, 8)}:`;
  const http: HttpContext = {
    publicUrl: "https://gw.example.org",
    publicUrlFor: (p) => `https://gw.example.org/email${p}`,
    route: () => undefined,
  };
  const exists = (file: string) =>
    access(file).then(
      () => true,
      () => false,
    );
  const pathOf = (url: string) => {
    const token = /files\/([\w-]{32})\//.exec(url)?.[1] ?? "";
    return path.join(dir, token.slice(0, 2), token);
  };

  beforeAll(async () => {
    redis = new Redis(bed.redis!.url);
    dir = await mkdtemp(path.join(tmpdir(), "gw-files-"));
    files = new MailFiles(
      { redis, key: new Keys(prefix).adapterKey("email"), log: pino({ level: "silent" }) },
      http,
      new DirectoryStore(dir),
      TTL_SECONDS,
      { maxBytesPerAlias: 1000, maxBytesTotal: 1500 },
    );
  });

  afterAll(async () => {
    redis?.disconnect();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("counts each alias's files and refuses beyond its quota or the total", async () => {
    const file = (bytes: number) => ({
      content: Buffer.alloc(bytes, 1),
      contentType: "text/plain",
      name: "a.txt",
    });
    const first = await files.put(file(600), ["ann"]);
    expect(await exists(pathOf(first))).toBe(true);
    expect(await files.usage("ann")).toBe(600);
    await expect(files.put(file(500), ["ann"])).rejects.toThrow(FileRefused);
    await expect(files.put(file(500), ["ann"])).rejects.toThrow(/file space of ann/);
    // Another alias has its own space, until the total is reached.
    await files.put(file(800), ["bob"]);
    await expect(files.put(file(200), ["cat"])).rejects.toThrow(/the gateway's file space/);
    expect(await files.usage()).toBe(1400);
    // A refused file leaves nothing behind.
    expect(await files.usage("cat")).toBe(0);
  });

  it("removes expired files and gives their space back", async () => {
    const before = await files.usage();
    const url = await files.put({ content: Buffer.from("old"), contentType: "text/plain", name: "old.txt" }, [
      "dan",
    ]);
    expect(await files.usage("dan")).toBe(3);
    expect(await files.sweep(Date.now())).toBe(0); // nothing expired yet
    const removed = await files.sweep(Date.now() + TTL_SECONDS * 1000 + 1);
    expect(removed).toBeGreaterThanOrEqual(1);
    expect(await exists(pathOf(url))).toBe(false);
    expect(await files.usage("dan")).toBe(0);
    expect(await files.usage()).toBe(0);
    expect(before).toBeGreaterThan(0);
    expect(await redis.keys(`${prefix}file:*`)).toEqual([]);
  });
});
