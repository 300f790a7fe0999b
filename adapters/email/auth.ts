/**
 * Who really sent an inbound mail: SPF, DKIM, ARC and DMARC (RFC 7208, 6376, 8617, 7489) through mailauth's
 * authenticate(), with the DNS servers the config names. The verdict is a pure function of mailauth's result,
 * so it has table tests.
 */
import { Resolver } from "node:dns/promises";
import { LRUCache } from "lru-cache";
import type { ARCResult, DKIMVerifyResult, DMARCResult, DNSResolver, SPFResult } from "mailauth";
import { loadOnce } from "../../src/load-once.js";

/** How long one DNS lookup may take before the check counts as a temporary error. */
export const DNS_TIMEOUT_MS = 5_000;
/** Tries per DNS lookup. */
export const DNS_TRIES = 2;
/**
 * How long an answer (records, or "no such name / no such record") is reused for the next mails' checks.
 * Mail from one domain comes in bursts, and each mail asks for the same SPF, DMARC and DKIM key records; a
 * minute is far below the TTLs these records are published with.
 */
export const DNS_CACHE_SECONDS = 60;
/** Answers kept at most (least recently used first out). */
export const DNS_CACHE_ENTRIES = 10_000;
/** Answers that say the record does not exist: as reusable as records. Failures (timeouts…) are not kept. */
const NEGATIVE_ANSWERS: ReadonlySet<string> = new Set(["ENOTFOUND", "ENODATA"]);

type DnsAnswer = { records: string[][] | string[] } | { absent: Error };

/** What the gateway does with mail that fails DMARC (the author domain says the sender is not theirs). */
export type DmarcFailPolicy = "mark" | "reject";

export interface AuthVerdict {
  spf: string;
  dkim: string;
  dmarc: string;
  /** The ARC chain's result (RFC 8617): "none" when the mail came straight from its author's servers. */
  arc: string;
  /** The sender is who the From header says: DMARC passed, or (no DMARC record) SPF or DKIM passed for it. */
  verified: boolean;
  /**
   * DMARC failed and the author domain asks receivers to act on it (p=quarantine or p=reject): it
   * disowns this sender. With p=none the domain only monitors, and the mail is marked, never refused.
   */
  disowned: boolean;
  /** RFC 8601 Authentication-Results value, for the logs. */
  summary: string;
}

const resultOf = (status: { result?: string } | undefined): string => status?.result ?? "none";

/** The verdict from mailauth's result. */
export function verdictOf(result: {
  spf: Pick<SPFResult, "status"> | false;
  dkim: Pick<DKIMVerifyResult, "results"> | undefined;
  dmarc: Pick<DMARCResult, "status" | "policy"> | false;
  arc?: Pick<ARCResult, "status"> | false;
}): AuthVerdict {
  const spf = result.spf ? resultOf(result.spf.status) : "none";
  const dkimResults = result.dkim?.results ?? [];
  const dkim = dkimResults.some((r) => r.status?.result === "pass")
    ? "pass"
    : resultOf(dkimResults[0]?.status);
  const dmarc = result.dmarc ? resultOf(result.dmarc.status) : "none";
  const arc = result.arc ? resultOf(result.arc.status) : "none";
  const verified = dmarc === "pass" || (dmarc === "none" && (spf === "pass" || dkim === "pass"));
  return {
    spf,
    dkim,
    dmarc,
    arc,
    verified,
    disowned: dmarc === "fail" && result.dmarc !== false && result.dmarc.policy !== "none",
    summary: `spf=${spf} dkim=${dkim} dmarc=${dmarc} arc=${arc}`,
  };
}

/** Said first in a message whose sender could not be verified. */
export function unverifiedNote(address: string): string {
  return (
    `⚠ The sender of this mail could not be verified: it may not really come from ${address}. ` +
    "Do not trust links or requests in it without checking."
  );
}

/**
 * A DNS lookup function for mailauth: the given servers ("1.2.3.4" or "1.2.3.4:5353"), or the system's. Answers
 * are kept DNS_CACHE_SECONDS, and mails checked at the same time share one lookup of the same record.
 */
export function dnsResolver(servers: readonly string[] | undefined): DNSResolver {
  const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: DNS_TRIES });
  if (servers && servers.length > 0) resolver.setServers([...servers]);
  const answers = new LRUCache<string, DnsAnswer, { name: string; rrtype: string }>({
    max: DNS_CACHE_ENTRIES,
    ttl: DNS_CACHE_SECONDS * 1000,
    fetchMethod: async (_key, _stale, { context }) => {
      try {
        return { records: (await resolver.resolve(context.name, context.rrtype)) as string[][] | string[] };
      } catch (err) {
        if (NEGATIVE_ANSWERS.has((err as NodeJS.ErrnoException).code ?? "")) return { absent: err as Error };
        throw err;
      }
    },
  });
  return async (name, rrtype) => {
    const answer = await answers.fetch(`${rrtype} ${name.toLowerCase()}`, { context: { name, rrtype } });
    if (!answer) throw new Error(`no DNS answer for ${name} ${rrtype}`);
    if ("absent" in answer) throw answer.absent;
    return answer.records;
  };
}

export interface Connection {
  /** The sending server's IP address. */
  ip: string;
  /** Its EHLO/HELO name. */
  helo: string;
  /** MAIL FROM (empty for bounces). */
  sender: string;
}

/** mailauth (its PKI and public-suffix tables: about 11 MiB of heap), loaded with the first mail. */
const mailauth = loadOnce(() => import("mailauth"));

/**
 * Runs mailauth's authenticate() on a raw mail as received over `connection`: DKIM, SPF (with an empty MAIL
 * FROM, a bounce, SPF checks postmaster@<HELO name>, RFC 7208 §2.4), ARC (the chain a forwarder sealed, which
 * DMARC may take into account) and DMARC. BIMI is off: it fetches a logo over HTTPS for every mail, and an
 * XMPP message has no place to show it. The gateway only receives mail, never forwards it, so it seals no ARC.
 */
export async function checkSender(
  raw: Buffer,
  connection: Connection,
  options: { resolver: DNSResolver; mta: string },
): Promise<AuthVerdict> {
  const { authenticate } = await mailauth();
  const result = await authenticate(raw, {
    ip: connection.ip,
    helo: connection.helo,
    sender: connection.sender,
    mta: options.mta,
    resolver: options.resolver,
    disableBimi: true,
  });
  return verdictOf(result);
}
