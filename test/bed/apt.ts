import { execFile } from "node:child_process";
import { access, constants, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/** A program the bed needs and the Debian package that ships it. */
export interface DebianPackage {
  /** Absolute path, or a name looked up in PATH (plus the sbin folders). */
  bin: string;
  pkg: string;
}

const POLICY_RC_D = "/usr/sbin/policy-rc.d";
const EXTRA_PATH = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
let updated: Promise<void> | undefined;

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether `bin` (an absolute path, or a name in PATH or an sbin folder) exists and is executable. */
export async function hasBinary(bin: string): Promise<boolean> {
  if (bin.includes("/")) return isExecutable(bin);
  const dirs = [...(process.env.PATH ?? "").split(path.delimiter), ...EXTRA_PATH].filter(Boolean);
  for (const dir of dirs) if (await isExecutable(path.join(dir, bin))) return true;
  return false;
}

function run(cmd: string, args: string[]): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive", NEEDRESTART_MODE: "l" };
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve();
      const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-30).join("\n");
      reject(new Error(`${cmd} ${args.join(" ")} failed (${err.message.split("\n")[0]}):\n${tail}`));
    });
  });
}

/**
 * Installing a Debian package normally starts its daemon. The bed runs its own copies, so for the
 * duration of the install a policy-rc.d that exits 101 ("action forbidden") is put in place: both
 * invoke-rc.d and deb-systemd-invoke consult it, under sysvinit and systemd alike. An existing
 * policy-rc.d that already exits 101 is left alone; any other one is moved aside and restored.
 */
async function withDaemonsForbidden(fn: () => Promise<void>): Promise<void> {
  let previous: string | undefined;
  try {
    previous = await readFile(POLICY_RC_D, "utf8");
  } catch {
    previous = undefined;
  }
  if (previous !== undefined && /^\s*exit\s+101\s*$/m.test(previous)) return fn();
  const backup = `${POLICY_RC_D}.xmpp-gateway-bed`;
  if (previous !== undefined) await rename(POLICY_RC_D, backup);
  await writeFile(POLICY_RC_D, "#!/bin/sh\n# temporary, written by test/bed/apt.ts\nexit 101\n", {
    mode: 0o755,
  });
  try {
    await fn();
  } finally {
    await rm(POLICY_RC_D, { force: true });
    if (previous !== undefined) await rename(backup, POLICY_RC_D);
  }
}

/**
 * Test files install what they need while other files run (each test process is its own): a second apt-get
 * waits for the first one's lock instead of failing at once.
 */
const LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"];

/**
 * Installs (in one apt-get call) the packages whose binary is missing. Runs `apt-get update` at most
 * once per process. Starts no daemon (see withDaemonsForbidden). Needs root; otherwise throws an
 * Error naming the exact command to run.
 */
export async function ensureDebianPackages(pkgs: DebianPackage[]): Promise<void> {
  const missing: string[] = [];
  for (const { bin, pkg } of pkgs) {
    if (!(await hasBinary(bin)) && !missing.includes(pkg)) missing.push(pkg);
  }
  if (missing.length === 0) return;
  const installArgs = ["install", "-y", "--no-install-recommends", ...LOCK_WAIT, ...missing];
  if (process.getuid?.() !== 0) {
    throw new Error(
      `Missing Debian packages: ${missing.join(", ")}. Install them as root with:\n` +
        `  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get ${installArgs.join(" ")}`,
    );
  }
  const started = Date.now();
  updated ??= run("apt-get", ["update", ...LOCK_WAIT]).catch((err: unknown) => {
    updated = undefined;
    throw err;
  });
  await updated;
  await withDaemonsForbidden(() => run("apt-get", installArgs));
  console.log(
    `[bed] apt-get installed ${missing.join(" ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}
