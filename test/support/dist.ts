/**
 * The compiled gateway (dist/, built by `npm run build`) that tests and benchmarks run as a process, the way
 * it runs in production. Never tsx: a SIGKILL must reach the gateway itself, not a wrapper around it.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The gateway's command line, compiled. */
export const GATEWAY_MAIN = path.join(ROOT, "dist/src/main.js");

/** What the build compiles: a change to any of these makes dist/ stale. */
const SOURCES = ["src", "adapters", "types", "package.json", "tsconfig.json", "tsconfig.build.json"];

function newestMtime(file: string): number {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(file))
    if (!entry.endsWith(".test.ts")) newest = Math.max(newest, newestMtime(path.join(file, entry)));
  return newest;
}

/** Why dist/ cannot be used (missing, or older than a source file), or undefined when it is up to date. */
export function distProblem(): string | undefined {
  if (!existsSync(GATEWAY_MAIN)) return `${path.relative(ROOT, GATEWAY_MAIN)} is missing`;
  const built = statSync(GATEWAY_MAIN).mtimeMs;
  const stale = SOURCES.find((s) => newestMtime(path.join(ROOT, s)) > built);
  return stale ? `dist/ is older than ${stale}/` : undefined;
}

/** Throws a clear error when dist/ is missing or stale (the test command builds it before the suite). */
export function requireDist(): string {
  const problem = distProblem();
  if (problem) throw new Error(`${problem}: run \`npm run build\` first (npm test does it)`);
  return GATEWAY_MAIN;
}

/** Builds dist/ when it is missing or stale (test global setup, benchmarks). */
export function ensureDist(): void {
  if (!distProblem()) return;
  execFileSync("npm", ["run", "--silent", "build"], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
}
