/**
 * One temporary directory per run of the suite, removed when the run ends. Global setup points TMPDIR at it
 * before anything starts, so whatever is made under os.tmpdir() lands inside: the test bed's servers, the
 * Vitest workers (forked later, with this process's environment) and the gateways and servers they start.
 *
 * Removing it is the backstop, not the cleanup: each test and each server starter removes what it made, so a
 * long run does not pile up either. The run fails when its directory still holds anything once the bed has
 * stopped, or when one of the suite's temporary directories turned up in the machine's own.
 */
import { chmod, mkdtemp, readdir, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** The run's directory, in the machine's temporary directory. */
const RUN_PREFIX = "xmpp-gateway-run-";
/** How the suite's temporary directories are named (their `mkdtemp` prefixes): none may reach the machine's. */
const SUITE_NAMES = /^(?:alertmanager|gw|inspircd|irc|mail|sentinel)-/;
/**
 * What the run's directory may still hold at the end, not left behind by a test: a Vitest worker's list of the
 * servers it owns (test/bed/owner.ts), removed when the worker exits, which may be after the global teardown;
 * the caches tools keep in the temporary directory for every later run (Node's compile cache, turned on by tsc
 * in install.test's build; tsx's, in bed.test's child processes), one each, never piling up.
 */
const NOT_LEFT_BEHIND = /^(?:xmpp-gateway-bed-owner-\d+\.list|node-compile-cache|tsx-\d+)$/;

/** The run left temporary files behind. */
export class TmpLeakError extends Error {
  override name = "TmpLeakError";
}

export interface RunTmpdir {
  dir: string;
  /**
   * Puts TMPDIR back and removes the directory, then throws a TmpLeakError naming what was left behind. With
   * `keep` (GW_KEEP_BED=1, or servers that may still run: their pid files are in it), it is removed only if
   * empty and nothing is checked.
   */
  close(opts: { keep: boolean }): Promise<void>;
}

/** Makes the run's directory and points TMPDIR (this process's, and so its children's) at it. */
export async function openRunTmpdir(): Promise<RunTmpdir> {
  const machine = tmpdir();
  const before = new Set(await readdir(machine));
  const dir = await mkdtemp(path.join(machine, RUN_PREFIX));
  await chmod(dir, 0o755); // ejabberd and ngircd run as their own users and must reach their dirs in it
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return {
    dir,
    async close({ keep }) {
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      if (keep) {
        await rmdir(dir).catch(() => console.log(`[bed] kept ${dir}`));
        return;
      }
      const left = (await readdir(dir)).filter((name) => !NOT_LEFT_BEHIND.test(name));
      await rm(dir, { recursive: true, force: true });
      const leaked = (await readdir(machine)).filter((name) => !before.has(name) && SUITE_NAMES.test(name));
      const found = [
        ...(left.length > 0 ? [`left in the run's directory: ${left.sort().join(", ")}`] : []),
        ...(leaked.length > 0
          ? [`made in ${machine} instead of the run's: ${leaked.sort().join(", ")}`]
          : []),
      ];
      if (found.length > 0)
        throw new TmpLeakError(`Temporary files the tests did not remove: ${found.join("; ")}`);
    },
  };
}
