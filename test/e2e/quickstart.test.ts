/**
 * The README's quickstart, as a newcomer runs it: everything comes up, and a stock client library logs in,
 * finds the gateway by disco#items on the server, registers, gets an answer and unregisters.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

it("brings everything up and works for a user (scripts/quickstart.sh --smoke)", async () => {
  const child = spawn("bash", ["scripts/quickstart.sh", "--smoke"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, "exit")) as [number];
  expect(out).toContain("ok - disco#items on localhost lists echo.localhost");
  expect(out).toContain("ok - bot@echo.localhost answered");
  expect(out).toContain("ok - unregistered from echo.localhost");
  expect(out).toContain("ok - the sandbox phone +12025550123 got the SMS from +12025550100");
  expect(out).toContain("ok - a delivery receipt came back");
  expect(out).toContain("ok - the phone's answer arrived in the same chat");
  expect(code, out).toBe(0);
}, 120_000);
