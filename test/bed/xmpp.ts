import { type Account, registerInBand } from "./ibr.js";

/** An external component (XEP-0114) the XMPP server accepts. */
export interface ComponentConfig {
  domain: string;
  secret: string;
  /**
   * ejabberd only: several connections may serve this domain, and each stanza goes to one of them chosen by
   * a hash of `by` (ejabberd's `domain_balancing`; `instances` is its `component_number`, which ejabberd
   * 23.01 needs to accept more than one connection). Prosody ignores it (it accepts one connection).
   */
  balancing?: {
    by: "source" | "destination" | "bare_source" | "bare_destination" | "random";
    instances: number;
  };
}

/** Plain data describing a started XMPP server: pass it to attachXmpp() in another process. */
export interface XmppInfo {
  kind: "prosody" | "ejabberd";
  dir: string;
  host: string;
  c2sPort: number;
  componentPort: number;
  components: ComponentConfig[];
  /** ejabberd only: Erlang node name, distribution port and cookie. */
  erlang?: { node: string; distPort: number; cookie: string };
}

/** A running XMPP server (Prosody or ejabberd) on loopback. */
export interface XmppPeer {
  kind: "prosody" | "ejabberd";
  host: string;
  c2sPort: number;
  componentPort: number;
  stop(): Promise<void>;
  /** Starts again on the same ports with the same data. */
  start(): Promise<void>;
  /** Creates an account by in-band registration; an existing account counts as success. */
  registerUser(user: string, password: string): Promise<void>;
  /** Same, for many accounts, on a few parallel streams. */
  registerUsers(users: Account[]): Promise<void>;
  info: XmppInfo;
}

/** The peer object shared by Prosody and ejabberd: only start and stop differ. */
export function xmppPeer(
  info: XmppInfo,
  control: { start(): Promise<void>; stop(): Promise<void> },
  concurrency: number,
): XmppPeer {
  const registerUsers = (users: Account[]): Promise<void> =>
    registerInBand(info.c2sPort, info.host, users, { concurrency });
  return {
    kind: info.kind,
    host: info.host,
    c2sPort: info.c2sPort,
    componentPort: info.componentPort,
    start: () => control.start(),
    stop: () => control.stop(),
    registerUser: (user, password) => registerUsers([{ user, password }]),
    registerUsers,
    info,
  };
}
