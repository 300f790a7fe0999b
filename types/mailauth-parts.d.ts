// Local types for the parts of mailauth used one by one. Its main entry also loads the BIMI checker, which
// needs undici 8 (Node >= 22): the gateway runs on Node 20 and does not check BIMI, so it loads these parts.
declare module "mailauth/lib/dkim/verify.js" {
  import type { DNSResolver, DKIMVerifyResult } from "mailauth";
  export function dkimVerify(
    input: Buffer,
    opts: { resolver: DNSResolver; sender?: string },
  ): Promise<DKIMVerifyResult>;
}
declare module "mailauth/lib/spf/index.js" {
  import type { DNSResolver, SPFResult } from "mailauth";
  export function spf(opts: {
    ip: string;
    helo: string;
    sender: string;
    mta: string;
    resolver: DNSResolver;
  }): Promise<SPFResult | false>;
}
declare module "mailauth/lib/dmarc/index.js" {
  import type { DNSResolver, DMARCResult } from "mailauth";
  export function evaluateDmarc(opts: {
    headerFrom: string[];
    fromFields: number;
    spfDomains: string[];
    dkimDomains: { id?: string; domain: string; aligned?: unknown; underSized?: unknown }[];
    resolver: DNSResolver;
  }): Promise<{ response: DMARCResult | false }>;
}
