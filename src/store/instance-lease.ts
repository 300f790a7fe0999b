/**
 * A running instance id is exclusive: the process holding it keeps a lease in Redis (a key with a TTL that
 * it renews every third of the TTL), whose value names the process (host, pid and a random token). Two
 * processes with one id would share a delivery consumer, IRC connection leases and each other's crash
 * sweep, so a second process refuses to start while the holder is alive.
 *
 * Alive means "seen renewing": a starting process that finds the lease held watches it for up to one TTL.
 * If it is renewed (its TTL goes back up, or its value changes), another process runs with this id and the
 * start is refused; if it expires (the holder was killed without a goodbye), it is taken over. A graceful
 * stop deletes the lease, so a restart takes it at once. A lease lost with Redis's data is written again at
 * the next renewal.
 *
 * A restart after a crash on the same machine need not wait: the value names the kernel boot and the pid
 * namespace, and when both are ours, the holder's pid says for sure whether it still runs (a process that
 * no longer exists cannot renew). Anywhere else (another host, another container) only expiry counts.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import type { RedisClient } from "./redis-client.js";
import type { Logger } from "../log.js";
import type { Keys } from "./keys.js";
import { LEASE_ACQUIRE, LEASE_RELEASE } from "./lease-scripts.js";

/** How long the lease lasts unrenewed: the longest a restart after a crash (SIGKILL) waits for it. */
export const INSTANCE_ID_LEASE_MS = 15_000;
/** How often the holder renews it (a third of its life: one missed renewal is harmless). */
export const INSTANCE_ID_RENEW_MS = INSTANCE_ID_LEASE_MS / 3;
/** How often a starting process looks at a held lease while deciding whether its holder is alive. */
export const INSTANCE_ID_WATCH_MS = 250;

// Take the lease over from a holder known to be dead, if it still holds it.
const TAKE_OVER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;

/** Another live process runs with this instance id. */
export class InstanceIdInUseError extends Error {
  constructor(
    readonly instanceId: string,
    readonly holder: string,
  ) {
    super(
      `The instance id "${instanceId}" is in use by another running gateway (${holder}) on the same Redis. ` +
        `Give each running gateway its own "instanceId" in the configuration (the default is the host name).`,
    );
    this.name = "InstanceIdInUseError";
  }
}

/**
 * This kernel boot and pid namespace (Linux), so that a pid in a lease can be checked here; undefined
 * elsewhere. Containers on one host share the boot id but not the pid namespace.
 */
function processSpace(): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    const ns = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
    return boot && ns ? `${boot}:${ns}` : undefined;
  } catch {
    return undefined;
  }
}

/** Whether process `pid` exists in this pid namespace. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** The lease value: "<host> pid <pid> [space <boot:pidns>] <random>". */
function tokenFor(space: string | undefined): string {
  return `${hostname()} pid ${process.pid}${space ? ` space ${space}` : ""} ${randomUUID().slice(0, 8)}`;
}

/** True when `holder` names a process of this kernel boot and pid namespace that no longer runs. */
export function deadHere(holder: string, space = processSpace()): boolean {
  const m = / pid (\d+) space (\S+) /.exec(holder);
  if (!m || !space || m[2] !== space) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !running(pid);
}

export class InstanceLease {
  /** The lease's value: which process holds it. */
  readonly token = tokenFor(processSpace());
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  /** False after another process took the id over (for /readyz). */
  lost = false;

  constructor(
    private readonly redis: RedisClient,
    keys: Keys,
    readonly instanceId: string,
    private readonly log: Logger,
    private readonly leaseMs = INSTANCE_ID_LEASE_MS,
  ) {
    this.key = keys.instanceLease(instanceId);
  }

  private readonly key: string;

  /**
   * Takes the lease, waiting up to one lease time for a crashed holder's lease to expire, then keeps it
   * renewed. Throws InstanceIdInUseError when a live process holds it.
   */
  async acquire(): Promise<void> {
    let watched: { holder: string; ttl: number } | undefined;
    const deadline = Date.now() + this.leaseMs + INSTANCE_ID_RENEW_MS;
    for (;;) {
      if ((await this.redis.set(this.key, this.token, "PX", this.leaseMs, "NX")) === "OK") break;
      const [holder, ttl] = await Promise.all([this.redis.get(this.key), this.redis.pttl(this.key)]);
      if (holder === null) continue; // expired between the two commands
      if (deadHere(holder)) {
        const taken = await this.redis.eval(TAKE_OVER, 1, this.key, holder, this.token, String(this.leaseMs));
        if (taken === 1) {
          this.log.info(
            { instanceId: this.instanceId, holder },
            "took the instance id over from a process that is gone",
          );
          break;
        }
        continue;
      }
      if (watched && (holder !== watched.holder || ttl > watched.ttl))
        throw new InstanceIdInUseError(this.instanceId, holder);
      if (!watched)
        this.log.warn(
          { instanceId: this.instanceId, holder, waitMs: ttl },
          "the instance id is held; waiting to see whether its holder is alive (a restart after a crash waits for the lease to expire)",
        );
      if (Date.now() > deadline) throw new InstanceIdInUseError(this.instanceId, holder);
      watched = { holder, ttl };
      await new Promise((r) => setTimeout(r, INSTANCE_ID_WATCH_MS));
    }
    this.held = true;
    this.timer = setInterval(() => void this.renew(), Math.round(this.leaseMs / 3));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const ours = await this.redis.eval(LEASE_ACQUIRE, 1, this.key, this.token, String(this.leaseMs));
      if (ours === 1) {
        if (this.lost) this.log.info({ instanceId: this.instanceId }, "instance id lease held again");
        this.lost = false;
        return;
      }
      if (!this.lost)
        this.log.error(
          { instanceId: this.instanceId, holder: await this.redis.get(this.key) },
          "another process took over this instance id (this one could not renew its lease in time); " +
            "stop one of them or give each its own instanceId",
        );
      this.lost = true;
    } catch (err) {
      // Redis down: the lease expires there too, so nobody else can take it meanwhile.
      this.log.debug({ err: (err as Error).message }, "could not renew the instance id lease");
    }
  }

  /** Stops renewing and deletes the lease (if still ours), so a restart takes it at once. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    if (!this.held) return;
    this.held = false;
    await this.redis.eval(LEASE_RELEASE, 1, this.key, this.token);
  }
}
