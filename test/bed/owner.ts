import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pgidFile, type ServerSpec, signalGroup } from "./process.js";

/** pgid files of the servers this process owns; mirrored in `registry` for the watchdog. */
const owned = new Set<string>();
const registry = path.join(tmpdir(), `xmpp-gateway-bed-owner-${process.pid}.list`);

/**
 * A tiny sh process per owner: polls the owner every 0.5 s, and once it is gone (or a zombie),
 * SIGKILLs the groups in the pgid files listed in the registry. Exits when the registry vanishes.
 */
const WATCHDOG = `
while [ -f "$1" ]; do
  case "$(sed -n 's/^.*) \\([A-Z]\\) .*$/\\1/p' /proc/$2/stat 2>/dev/null)" in ""|Z|X) break;; esac
  sleep 0.5
done
[ -f "$1" ] || exit 0
while read -r f; do pg=$(cat "$f" 2>/dev/null) && [ -n "$pg" ] && kill -9 -"$pg" 2>/dev/null; done < "$1"
rm -f "$1"`;

function killOwnedNow(): void {
  for (const file of owned) {
    try {
      const pgid = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(pgid) && pgid > 1) signalGroup(pgid, "SIGKILL");
    } catch {
      // no server running
    }
  }
  rmSync(registry, { force: true });
}

/**
 * Makes this process the owner of the server: when it exits, the server is SIGKILLed (an 'exit'
 * handler, plus a watchdog for when this process is killed outright). Attached processes (Vitest
 * workers) must not call this: a server that a worker restarts stays owned by the owner, whose
 * handlers read the pgid file when they fire.
 */
export function ownServer(spec: ServerSpec): void {
  owned.add(pgidFile(spec));
  writeFileSync(registry, [...owned].join("\n") + "\n");
  if (owned.size > 1) return;
  process.on("exit", killOwnedNow);
  spawn("/bin/sh", ["-c", WATCHDOG, "bed-watchdog", registry, String(process.pid)], {
    detached: true,
    stdio: "ignore",
  }).unref();
}
