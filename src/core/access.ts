import { GatewayError } from "../xmpp/errors.js";

/**
 * Who may use an adapter: bare JIDs and domains from `access.allow`, by default the XMPP server's own
 * domains. Admins (from config) may always use every adapter.
 */
export class AccessPolicy {
  private readonly jids = new Set<string>();
  private readonly domains = new Set<string>();

  constructor(
    allow: readonly string[],
    private readonly admins: readonly string[],
    private readonly serviceName: string,
  ) {
    for (const entry of allow) {
      const e = entry.toLowerCase();
      if (e.includes("@")) this.jids.add(e);
      else this.domains.add(e);
    }
    for (const a of admins) this.jids.add(a.toLowerCase());
  }

  allows(bareJid: string): boolean {
    const jid = bareJid.toLowerCase();
    const domain = jid.slice(jid.indexOf("@") + 1);
    return this.jids.has(jid) || this.domains.has(domain);
  }

  isAdmin(bareJid: string): boolean {
    return this.admins.some((a) => a.toLowerCase() === bareJid.toLowerCase());
  }

  /** Throws `forbidden` with a text that says who to ask. */
  check(bareJid: string): void {
    if (this.allows(bareJid)) return;
    const ask = this.admins.length ? `ask ${this.admins.join(" or ")}` : "ask the server's administrator";
    throw new GatewayError(
      "forbidden",
      `You are not allowed to use the ${this.serviceName} gateway; ${ask}.`,
    );
  }
}
