import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Where chosen ports start: above the well-known and the usual service ports. */
const LOWEST = 10_000;
/** Random tries below the ephemeral range before falling back to a port the kernel picks. */
const TRIES = 50;

/**
 * The ports the kernel hands to outgoing connections (net.ipv4.ip_local_port_range; Linux's default when it
 * cannot be read). A port chosen from there can be taken by any connect() between the choice and the server's
 * bind: a Redis cluster node once failed with "Address already in use" that way while other tests ran.
 */
export function ephemeralPorts(): [low: number, high: number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/);
    if (Number(low) > 0 && Number(high) >= Number(low)) return [Number(low), Number(high)];
  } catch {
    // not Linux, or /proc not mounted: the default below
  }
  return [32_768, 60_999];
}

/** Binds `port` on 127.0.0.1 (0: any) and closes it again; the port bound, or null if it was taken. */
function tryPort(port: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", (err: NodeJS.ErrnoException) =>
      err.code === "EADDRINUSE" || err.code === "EACCES" ? resolve(null) : reject(err),
    );
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error("freePort: listening socket has no TCP address"));
        return;
      }
      const bound = address.port;
      server.close((err) => (err ? reject(err) : resolve(bound)));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen at random below the ephemeral range, so that no
 * outgoing connection can take it before the server that asked for it listens. Only if none of TRIES is free,
 * one the kernel picks (listen on port 0).
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralPorts();
  if (low - LOWEST > 1_000)
    for (let i = 0; i < TRIES; i++) {
      const port = await tryPort(LOWEST + Math.floor(Math.random() * (low - LOWEST)));
      if (port !== null) return port;
    }
  const port = await tryPort(0);
  if (port === null) throw new Error("freePort: no port to listen on");
  return port;
}

/** `count` distinct free ports (asked for together, so they cannot repeat). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
