/**
 * Whether the nick that takes NickServ IDENTIFY is the network's services and not a user who took the
 * nick (anyone may, where services are down or absent). WHOIS tells where the nick is: RPL_WHOISUSER
 * (311) its host, RPL_WHOISSERVER (312) the server it is on. Users cannot pick either: networks link their
 * services as a server of their own (services.libera.chat, services.oftc.net) and set their hosts.
 */
import type { IrcConfig } from "./config.js";
import { NUMERIC, type IrcMessage } from "./message.js";

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

/** What identifying needs of a connection. */
export interface ServicesLink {
  send(command: string, ...args: string[]): Promise<void>;
  /** Sees every server line until the returned function is called. */
  watch(listener: (m: IrcMessage) => void): () => void;
}

/** Sends IDENTIFY to the services nick if WHOIS shows it is the configured services; the password is never logged. */
export async function identify(
  link: ServicesLink,
  spec: ServicesSpec,
  password: string,
  timeoutMs: number,
): Promise<"sent" | "untrusted"> {
  const facts = await whois(link, spec.nick, timeoutMs);
  if (!isServices(spec, facts)) return "untrusted";
  await link.send("PRIVMSG", spec.nick, `IDENTIFY ${password}`);
  return "sent";
}

/**
 * A connection's NickServ identification: once its nick is registered (`ready`), and only to the network's
 * services (WHOIS first: anyone may hold the nick NickServ where services are down). "none": no password
 * to send, or the connection failed first. The password is never logged.
 */
export function identifyWhenReady(
  ready: Promise<void>,
  link: ServicesLink,
  spec: ServicesSpec,
  password: string | undefined,
  timeoutMs: number,
): Promise<"sent" | "untrusted" | "none"> {
  if (password === undefined) return Promise.resolve("none");
  return ready.then(() => identify(link, spec, password, timeoutMs)).catch(() => "none" as const);
}

/** What the user reads when their NickServ password was kept back: the nick is not the services. */
export function untrustedNotice(spec: ServicesSpec, server: string): string {
  const where = [
    spec.server && `on a server matching ${spec.server}`,
    spec.host && `with a host matching ${spec.host}`,
  ]
    .filter(Boolean)
    .join(" and ");
  return (
    `Your NickServ password was not sent: ${spec.nick} on ${server} is not the network's services ` +
    `(expected ${where}). If this network's services are elsewhere, the gateway's administrators can say so.`
  );
}

/** What WHOIS says of `nick`: its host and server ({} for no such nick or no answer in time). */
function whois(link: ServicesLink, nick: string, timeoutMs: number): Promise<WhoisFacts> {
  const facts: WhoisFacts = {};
  return new Promise<WhoisFacts>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop();
      resolve(facts);
    };
    const stop = link.watch((m) => {
      if (m.params[1]?.toLowerCase() !== nick.toLowerCase()) return;
      if (m.command === NUMERIC.RPL_WHOISUSER) facts.host = m.params[3];
      else if (m.command === NUMERIC.RPL_WHOISSERVER) facts.server = m.params[2];
      else if (m.command === NUMERIC.RPL_ENDOFWHOIS || m.command === NUMERIC.ERR_NOSUCHNICK) done();
    });
    const timer = setTimeout(done, timeoutMs);
    link.send("WHOIS", nick).catch(done);
  });
}
