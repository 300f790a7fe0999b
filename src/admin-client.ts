/**
 * The command line's client of a running gateway: `status` asks /readyz, `commands` and `command` use the
 * admin API with the admin token, so scripts need neither Redis nor an XMPP account.
 */
import { readFile } from "node:fs/promises";

/** How long the CLI waits for the gateway's answer. */
export const CLIENT_TIMEOUT_MS = 10_000;

export interface Target {
  url: string;
  tokenEnv: string | undefined;
}

/** Where the gateway's private listener is and which variable holds the admin token, read from the config file. */
export async function targetFromConfig(file: string, url: string | undefined): Promise<Target> {
  let raw: {
    http?: { private?: { host?: unknown; port?: unknown }; admin?: { tokenEnv?: unknown } };
  } = {};
  try {
    raw = JSON.parse(await readFile(file, "utf8")) as typeof raw;
  } catch (err) {
    if (!url) throw new Error(`${file}: ${(err as Error).message} (or give --url)`);
  }
  // /readyz and the admin API are on the private listener (config http.private).
  const host = typeof raw.http?.private?.host === "string" ? raw.http.private.host : "127.0.0.1";
  const port = typeof raw.http?.private?.port === "number" ? raw.http.private.port : 8081;
  const reachable =
    host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const tokenEnv = typeof raw.http?.admin?.tokenEnv === "string" ? raw.http.admin.tokenEnv : undefined;
  return { url: (url ?? `http://${reachable}:${port}`).replace(/\/+$/, ""), tokenEnv };
}

/** Parses `field=value` arguments; a field given twice gets several values. */
export function parseAssignments(args: string[]): Record<string, string | string[]> {
  const values: Record<string, string | string[]> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new Error(`"${arg}" is not field=value`);
    const name = arg.slice(0, eq);
    const value = arg.slice(eq + 1);
    const prev = values[name];
    values[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return values;
}

export interface Answer {
  status: number;
  body: unknown;
}

export async function request(
  target: Target,
  path: string,
  options: { token?: string; json?: unknown } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.json !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${target.url}${path}`, {
    method: options.json === undefined ? "GET" : "POST",
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body };
}

interface ResultForm {
  title?: string;
  fields?: { var: string; label?: string; value?: string | string[] }[];
}

/** A command's result as lines of text: the note, then each result field. */
export function describeResult(body: unknown): string {
  const result = body as { note?: string; noteType?: string; form?: ResultForm; text?: string };
  const lines = [result.note ?? result.text ?? JSON.stringify(body)];
  for (const field of result.form?.fields ?? []) {
    const values = Array.isArray(field.value) ? field.value : field.value === undefined ? [] : [field.value];
    lines.push(`${field.label ?? field.var}:`);
    for (const v of values) lines.push(`  ${v}`);
  }
  return lines.join("\n");
}
