/**
 * One test bed per run: Prosody, ejabberd, an IRC server and Redis on free loopback ports, installed from
 * Debian when missing. Test files reach it through inject("bed") and attach(). The run keeps its temporary
 * files in a directory of its own (test/run-tmpdir.ts), removed at the end.
 */
import type { TestProject } from "vitest/node";
import { type Bed, startBed, type BedInfo } from "./bed/index.js";
import { openRunTmpdir } from "./run-tmpdir.js";
import { slotComponents } from "./slots.js";
import { ensureDist } from "./support/dist.js";

declare module "vitest" {
  export interface ProvidedContext {
    bed: BedInfo;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The tests that run the gateway as a process run the compiled one; npm test has built it already.
  ensureDist();
  const runTmp = await openRunTmpdir();
  let bed: Bed;
  try {
    bed = await startBed({ components: slotComponents() });
  } catch (err) {
    await runTmp.close({ keep: true });
    throw err;
  }
  project.provide("bed", bed.describe());
  return async () => {
    try {
      await bed.stop();
    } catch (err) {
      await runTmp.close({ keep: true });
      throw err;
    }
    await runTmp.close({ keep: !bed.describe().removeDir }).catch((err: unknown) => {
      process.exitCode = 1; // Vitest prints an error of the teardown but would still exit 0
      throw err;
    });
  };
}
