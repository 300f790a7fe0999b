/**
 * The TCP listeners a configuration opens, and the check that no two of them want the same address: a clash
 * would only show at start as EADDRINUSE, so `--check-config` finds it first.
 */
import { isIP } from "node:net";
import type { GatewayConfig } from "./schema.js";

/** One TCP listener of the gateway, named by the config path of its port field (e.g. `http.port`). */
export interface ConfigListener {
  name: string;
  host: string;
  /** 0 picks a free port at start: it never clashes. */
  port: number;
}

/** An adapter's listeners, from its parsed config (AdapterFactory.listeners). */
export type ListenersOf = (config: never) => ConfigListener[];

/**
 * The core's own listeners. The one place to list a new one (each HTTP listener, say), so the clash check
 * covers it.
 */
export function coreListeners(config: GatewayConfig): ConfigListener[] {
  const { http } = config;
  return http.enabled
    ? [
        { name: "http.port", host: http.host, port: http.port },
        { name: "http.private.port", host: http.private.host, port: http.private.port },
      ]
    : [];
}

/** Every listener of the config: the core's, then each enabled adapter's. */
export function listenersOf(config: GatewayConfig, adapters: Record<string, ListenersOf>): ConfigListener[] {
  const out = coreListeners(config);
  for (const [key, adapter] of Object.entries(config.adapters)) {
    const of = adapters[key] as ((config: unknown) => ConfigListener[]) | undefined;
    if (adapter?.enabled && of) out.push(...of(adapter));
  }
  return out;
}

const unbracket = (host: string) => host.toLowerCase().replace(/^\[(.*)\]$/, "$1");

/** The addresses a bind host covers, as far as a clash goes: "*4"/"*6" stand for the wildcards. */
function covers(host: string): string[] {
  const h = unbracket(host);
  if (h === "" || h === "::" || h === "*") return ["*4", "*6"]; // Linux: "::" is dual-stack
  if (h === "0.0.0.0") return ["*4"];
  if (h === "localhost") return ["127.0.0.1", "::1"]; // either, depending on the resolver's order
  return [h];
}

function clash(a: ConfigListener, b: ConfigListener): boolean {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return false;
  const family = (x: string) => (x === "*4" ? 4 : x === "*6" ? 6 : isIP(x) || 0);
  return covers(a.host).some((x) =>
    covers(b.host).some((y) => {
      if (x === y) return true;
      const wildcard = x.startsWith("*") ? x : y.startsWith("*") ? y : undefined;
      if (!wildcard) return false;
      const other = wildcard === x ? y : x;
      // A wildcard takes the port on every address of its family (a host name may resolve to either).
      return family(other) === 0 || family(other) === family(wildcard);
    }),
  );
}

/** One problem per listener that wants an address an earlier one already has. */
export function listenerClashes(listeners: readonly ConfigListener[]): string[] {
  const problems: string[] = [];
  listeners.forEach((listener, i) => {
    const earlier = listeners.slice(0, i).find((other) => clash(other, listener));
    if (earlier)
      problems.push(
        `${listener.name}: ${listener.host}:${listener.port} is also the address of ${earlier.name} ` +
          `(${earlier.host}:${earlier.port}); two listeners cannot share a port`,
      );
  });
  return problems;
}
