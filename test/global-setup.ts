/**
 * One test bed per run: Prosody, ejabberd, an IRC server and Redis on free loopback ports, installed from
 * Debian when missing. Test files reach it through inject("bed") and attach().
 */
import type { TestProject } from "vitest/node";
import { startBed, type BedInfo } from "./bed/index.js";
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
  const bed = await startBed({ components: slotComponents() });
  project.provide("bed", bed.describe());
  return () => bed.stop();
}
