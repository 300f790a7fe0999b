import { describe, expect, it } from "vitest";
import { startDns } from "../../test/support/dns.js";
import { dnsResolver, verdictOf } from "./auth.js";

type R = "pass" | "fail" | "none" | "softfail" | "temperror";
const result = (spf: R | null, dkim: R | null, dmarc: R | null, policy = "reject") => ({
  spf: spf ? { status: { result: spf } } : (false as const),
  dkim: { results: dkim ? [{ status: { result: dkim } }] : [] },
  dmarc: dmarc ? { status: { result: dmarc }, policy } : (false as const),
});

describe("verdictOf", () => {
  it.each([
    ["DMARC pass", result("pass", "none", "pass"), true, false],
    ["DMARC fail, p=reject", result("fail", "none", "fail"), false, true],
    ["DMARC fail, p=quarantine", result("fail", "fail", "fail", "quarantine"), false, true],
    ["DMARC fail, p=none: only marked", result("fail", "none", "fail", "none"), false, false],
    ["no DMARC record, SPF pass", result("pass", null, "none"), true, false],
    ["no DMARC record, DKIM pass", result("softfail", "pass", null), true, false],
    ["nothing passes", result("none", null, null), false, false],
    ["DNS down", result("temperror", "temperror", "temperror"), false, false],
  ])("%s", (_name, input, verified, disowned) => {
    // The fixtures carry only the fields verdictOf reads.
    const verdict = verdictOf(input as unknown as Parameters<typeof verdictOf>[0]);
    expect({ verified: verdict.verified, disowned: verdict.disowned }).toEqual({ verified, disowned });
  });
});

describe("verdict summary", () => {
  it("names the ARC chain's result next to SPF, DKIM and DMARC", () => {
    const input = { ...result("fail", "fail", "pass"), arc: { status: { result: "pass" } } };
    const verdict = verdictOf(input as unknown as Parameters<typeof verdictOf>[0]);
    expect(verdict.summary).toBe("spf=fail dkim=fail dmarc=pass arc=pass");
  });
});

describe("dnsResolver", () => {
  it("reuses an answer and an NXDOMAIN for the next mails, so a burst asks the DNS server once", async () => {
    const dns = await startDns({ "example.com": "v=spf1 ip4:127.0.0.1 -all" });
    const lookup = dnsResolver([dns.server]);
    try {
      // Mails checked at the same time share one lookup.
      const answers = await Promise.all([1, 2, 3].map(() => lookup("example.com", "TXT")));
      for (const answer of answers) expect(answer).toEqual([["v=spf1 ip4:127.0.0.1 -all"]]);
      const missing = await lookup("_dmarc.example.com", "TXT").catch(
        (err: NodeJS.ErrnoException) => err.code,
      );
      expect(missing).toBe("ENOTFOUND");
    } finally {
      await dns.stop();
    }
    // The server is gone: what was asked within the last minute is still answered, absent names too.
    expect(await lookup("EXAMPLE.com", "TXT")).toEqual([["v=spf1 ip4:127.0.0.1 -all"]]);
    const missing = await lookup("_dmarc.example.com", "TXT").catch((err: NodeJS.ErrnoException) => err.code);
    expect(missing).toBe("ENOTFOUND");
  });
});
