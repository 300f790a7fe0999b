import { readFile } from "node:fs/promises";
import type { z } from "zod";
import { listenerClashes, listenersOf, type ListenersOf } from "./listeners.js";
import { buildConfigSchema, type AdapterOptionsSchema, type GatewayConfig } from "./schema.js";

/** Shortest admin token accepted: it guards every admin action, so it must not be guessable. */
export const MIN_ADMIN_TOKEN_CHARS = 16;

/** A config that cannot be used; main() prints every problem and exits 2. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.length} problem(s) in the configuration`);
    this.name = "ConfigError";
  }
}

export interface LoadedConfig {
  config: GatewayConfig;
  /** XEP-0114 secret per adapter key, read from the environment. */
  secrets: Record<string, string>;
  /**
   * Every other secret an adapter's config names by an `…Env` field (e.g. `twilio.authTokenEnv`), by
   * environment variable name. Checked at start like the component secrets.
   */
  adapterSecrets: Record<string, string>;
  redisPassword: string | undefined;
  sentinelPassword?: string | undefined;
  /** The admin page's token (config http.admin.tokenEnv), when the page is on. */
  adminToken: string | undefined;
}

/** Paths and values of the `…Env` fields (other than secretEnv) in an adapter's config. */
function envFields(value: unknown, path: string): [string, string][] {
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]): [string, string][] => {
    if (typeof v === "string" && k.endsWith("Env") && k !== "secretEnv") return [[`${path}.${k}`, v]];
    return envFields(v, `${path}.${k}`);
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.map(String).join(".") : "(top level)";
  // A bad record key (e.g. a dedicated number): zod's own text is "Invalid key in record"; say why.
  const message =
    issue.code === "invalid_key" && issue.issues.length
      ? issue.issues.map((inner) => inner.message).join("; ")
      : issue.message;
  return `${path}: ${message}`;
}

/** What the adapters add to the checks beyond their schemas (from their factories; see src/compose.ts). */
export interface AdapterChecks {
  /** Per adapter key: the TCP listeners its config opens, checked with the core's for clashes. */
  listeners?: Record<string, ListenersOf>;
}

export function parseConfig(
  file: string,
  raw: unknown,
  adapterSchemas: Record<string, AdapterOptionsSchema>,
  env: NodeJS.ProcessEnv,
  checks: AdapterChecks = {},
): LoadedConfig {
  const result = buildConfigSchema(adapterSchemas).safeParse(raw);
  if (!result.success) throw new ConfigError(file, result.error.issues.map(describeIssue));
  const config = result.data as GatewayConfig;

  const problems: string[] = [];
  const secrets: Record<string, string> = {};
  const adapterSecrets: Record<string, string> = {};
  const domains = new Map<string, string>();
  for (const [key, adapter] of Object.entries(config.adapters)) {
    if (!adapter?.enabled) continue;
    const secret = env[adapter.secretEnv];
    if (!secret)
      problems.push(`adapters.${key}.secretEnv: environment variable ${adapter.secretEnv} is not set`);
    else secrets[key] = secret;
    for (const [path, name] of envFields(adapter, `adapters.${key}`)) {
      const value = env[name];
      if (!value) problems.push(`${path}: environment variable ${name} is not set`);
      else adapterSecrets[name] = value;
    }
    const other = domains.get(adapter.domain);
    if (other)
      problems.push(`adapters.${key}.domain: ${adapter.domain} is already used by adapters.${other}`);
    domains.set(adapter.domain, key);
  }
  if (domains.size === 0) problems.push("adapters: no adapter is enabled");
  problems.push(...listenerClashes(listenersOf(config, checks.listeners ?? {})));
  const passwordEnv = config.redis.passwordEnv;
  const redisPassword = passwordEnv ? env[passwordEnv] : undefined;
  if (passwordEnv && !redisPassword)
    problems.push(`redis.passwordEnv: environment variable ${passwordEnv} is not set`);
  const sentinelPasswordEnv = config.redis.sentinelPasswordEnv;
  const sentinelPassword = sentinelPasswordEnv ? env[sentinelPasswordEnv] : undefined;
  if (sentinelPasswordEnv && !sentinelPassword)
    problems.push(`redis.sentinelPasswordEnv: environment variable ${sentinelPasswordEnv} is not set`);
  const tokenEnv = config.http.admin?.tokenEnv;
  const adminToken = tokenEnv ? env[tokenEnv] : undefined;
  if (tokenEnv && !adminToken)
    problems.push(`http.admin.tokenEnv: environment variable ${tokenEnv} is not set`);
  else if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_CHARS)
    problems.push(
      `http.admin.tokenEnv: the admin token in ${tokenEnv} is too short (at least ${MIN_ADMIN_TOKEN_CHARS} characters)`,
    );
  if (problems.length) throw new ConfigError(file, problems);
  return { config, secrets, adapterSecrets, redisPassword, sentinelPassword, adminToken };
}

export async function loadConfig(
  file: string,
  adapterSchemas: Record<string, AdapterOptionsSchema>,
  env: NodeJS.ProcessEnv = process.env,
  checks: AdapterChecks = {},
): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid JSON: ${(err as Error).message}`]);
  }
  return parseConfig(file, raw, adapterSchemas, env, checks);
}
