/**
 * The composition root: the one place in src/ that knows the adapters (ESLint enforces it).
 */
import { adapterFactories } from "../adapters/registry.js";
import type { AdapterOptionsSchema } from "./config/schema.js";
import { loadConfig, type AdapterChecks, type LoadedConfig } from "./config/load.js";
import { Gateway } from "./gateway.js";
import type { Logger } from "./log.js";
import type { RecentErrors } from "./http/recent-errors.js";

export const adapterSchemas: Record<string, AdapterOptionsSchema> = Object.fromEntries(
  Object.entries(adapterFactories).map(([key, f]) => [key, f.configSchema]),
);

/** The checks beyond the schemas that the adapters contribute (their listeners, for clashes). */
export const adapterChecks: AdapterChecks = {
  listeners: Object.fromEntries(
    Object.entries(adapterFactories).flatMap(([key, f]) =>
      f.listeners ? [[key, (config: never) => f.listeners?.(config) ?? []]] : [],
    ),
  ),
};

export function loadGatewayConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  return loadConfig(file, adapterSchemas, env, adapterChecks);
}

export function createGateway(
  loaded: LoadedConfig,
  log: Logger,
  options: { recentErrors?: RecentErrors } = {},
): Gateway {
  return new Gateway(loaded, adapterFactories, log, options);
}
