/**
 * The composition root: the one place in src/ that knows the adapters (ESLint enforces it).
 */
import type { AdapterFactory } from "./adapter.js";
import { adapterRegistry } from "../adapters/registry.js";
import type { AdapterOptionsSchema } from "./config/schema.js";
import { loadConfig, type AdapterChecks, type LoadedConfig } from "./config/load.js";
import type { Gateway } from "./gateway.js";
import type { Logger } from "./log.js";
import type { RecentErrors } from "./http/recent-errors.js";

export const adapterSchemas: Record<string, AdapterOptionsSchema> = Object.fromEntries(
  Object.entries(adapterRegistry).map(([key, entry]) => [key, entry.configSchema]),
);

/** The checks beyond the schemas that the adapters contribute (their listeners, for clashes). */
export const adapterChecks: AdapterChecks = {
  listeners: Object.fromEntries(
    Object.entries(adapterRegistry).flatMap(([key, entry]) =>
      entry.listeners ? [[key, entry.listeners]] : [],
    ),
  ),
};

export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  return loadConfig(file, adapterSchemas, env, adapterChecks);
}

/** The factories of the adapters the config enables, and only those (each loads its network library). */
async function enabledFactories(loaded: LoadedConfig): Promise<Record<string, AdapterFactory>> {
  const keys = Object.entries(loaded.config.adapters)
    .filter(([key, a]) => a?.enabled && adapterRegistry[key])
    .map(([key]) => key);
  const factories: Record<string, AdapterFactory> = {};
  await Promise.all(
    keys.map(async (key) => {
      factories[key] = await adapterRegistry[key]!.load();
    }),
  );
  return factories;
}

export async function createGateway(
  loaded: LoadedConfig,
  log: Logger,
  options: { recentErrors?: RecentErrors } = {},
): Promise<Gateway> {
  // Imported here, not at the top: checking a config loads no Redis, XMPP or HTTP library.
  const { Gateway } = await import("./gateway.js");
  return new Gateway(loaded, await enabledFactories(loaded), log, options);
}
