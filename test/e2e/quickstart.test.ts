/**
 * The README's quickstart, as a newcomer runs it: everything comes up, and a stock client library logs in,
 * finds the gateway by disco#items on the server, registers, gets an answer and unregisters; texts the SMS
 * sandbox; joins #test on the local IRC server, talks with an IRC client, and stays through an IRC restart.
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
  expect(out).toContain("ok - joined #test%irc.localhost@irc.localhost");
  expect(out).toContain("ok - alice got the IRC client's answer in the room");
  expect(out).toContain("ok - after an IRC server restart the gateway joined #test again");
  expect(out).toContain("ok - alice never left the room");
  expect(out).toContain("ok - messages reach alice again after the restart");
  expect(code, out).toBe(0);
}, 120_000);
