import type { Adapter, AdhocCommand } from "../adapter.js";
import type { Logger } from "../log.js";
import type { Inbox } from "../delivery/inbox.js";
import type { OutboundLedger } from "../store/idempotency.js";
import type { Registrations } from "../store/registrations.js";
import type { UserSettings } from "../store/settings.js";
import type { ComponentLink } from "../xmpp/link.js";
import type { Identity } from "../xmpp/stanzas.js";
import type { AccessPolicy } from "./access.js";
import type { Metrics } from "../http/metrics.js";

/** Everything the handlers of one adapter domain need; passed around instead of a hub object. */
export interface ServiceContext {
  /** Config key of the adapter (echo, sms, email, irc). */
  readonly key: string;
  readonly domain: string;
  readonly adapter: Adapter;
  readonly link: ComponentLink;
  readonly log: Logger;
  readonly access: AccessPolicy;
  readonly registrations: Registrations;
  readonly settings: UserSettings;
  readonly ledger: OutboundLedger;
  readonly metrics: Metrics;
  readonly inbox: Inbox;
  readonly limits: { readonly maxBodyChars: number };
  readonly identity: Identity;
  readonly features: readonly string[];
  readonly capsVer: string;
  readonly version: string;
  /** Core commands followed by the adapter's own. */
  readonly commands: readonly AdhocCommand[];
}

/** The bare JID of a stanza's sender, lowercased domain as the server normalises it. */
export function bareOf(jid: string): string {
  const slash = jid.indexOf("/");
  return slash === -1 ? jid : jid.slice(0, slash);
}
