/**
 * Whether the nick that takes NickServ IDENTIFY is the network's services and not a user who took the
 * nick (anyone may, where services are down or absent). WHOIS tells where the nick is: RPL_WHOISUSER
 * (311) its host, RPL_WHOISSERVER (312) the server it is on. Users cannot pick either: networks link their
 * services as a server of their own (services.libera.chat, services.oftc.net) and set their hosts.
 */
import type { IrcConfig } from "./config.js";

export type ServicesSpec = IrcConfig["services"];

/** What WHOIS said about the services nick (undefined fields: not said, or no such nick). */
export interface WhoisFacts {
  host?: string;
  server?: string;
}

/** IRC masks: `*` any characters, `?` one, compared without regard to case (RFC 2812 §2.5). */
export function maskMatches(mask: string, value: string): boolean {
  const re = mask
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[\\^$.|+()[\]{}]/g, "\\$&")))
    .join("");
  return new RegExp(`^${re}$`, "i").test(value);
}

/** The nick is the configured services: every mask set matches what WHOIS said (an unsaid fact fails). */
export function isServices(spec: ServicesSpec, facts: WhoisFacts): boolean {
  const checks: [string | undefined, string | undefined][] = [
    [spec.server, facts.server],
    [spec.host, facts.host],
  ];
  if (checks.every(([mask]) => mask === undefined)) return false;
  return checks.every(
    ([mask, fact]) => mask === undefined || (fact !== undefined && maskMatches(mask, fact)),
  );
}
