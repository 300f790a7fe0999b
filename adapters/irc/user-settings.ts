/**
 * How one user connects to one server: the config's defaults with the user's own settings (ad-hoc commands,
 * settings.ts) applied, their SASL and NickServ passwords opened from their sealed form in Redis.
 */
import type { AdapterContext } from "../../src/adapter.js";
import { SealError, SecretBox } from "../../src/store/sealed.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import type { IrcConnections, SessionSettings } from "./connections.js";
import { mentionsOnly, serverSettings } from "./settings.js";

/** What a sealed password is bound to: copied to another user or field, it does not open. */
export const sealContext = (user: string, key: string): string => `irc\n${user}\n${key}`;

export class UserSettings {
  constructor(
    private readonly ctx: () => AdapterContext,
    private readonly connections: IrcConnections,
    /** Seals the users' IRC passwords in Redis; without it no password is stored. */
    private readonly box: SecretBox | undefined,
  ) {}

  /** The user's settings for a server, over the config's defaults. */
  async forServer(user: string, server: string, nick: string): Promise<SessionSettings> {
    const all = await this.ctx().settings.get(user);
    const own = serverSettings(all, server);
    const base = this.connections.defaults(server, own.nick || nick);
    const saslPassword = await this.openSecret(user, server, "saslPassword", own.saslPassword);
    const nickservPassword = await this.openSecret(user, server, "nickservPassword", own.nickservPassword);
    return {
      ...base,
      ...(saslPassword ? { sasl: { account: base.nick, password: saslPassword } } : {}),
      ...(nickservPassword ? { nickservPassword } : {}),
      ...(own.port ? { port: Number(own.port) } : {}),
      ...(own.charset ? { fallbackCharset: own.charset } : {}),
      // The admins' pause is a floor: a user may slow their connection down, never speed it up (a value
      // stored before the floor was raised, or by an older release, cannot lower it either).
      lineDelayMs: Math.max(base.lineDelayMs, Number(own.lineDelayMs) || 0),
      mentionsOnly: mentionsOnly(all, server),
    };
  }

  /** Seals a password for storing (refused when no key is configured). */
  seal(user: string, field: string, password: string): string {
    if (!this.box)
      throw new GatewayError(
        "feature-not-implemented",
        "This gateway does not store IRC passwords: its administrators have not set up the key that encrypts them.",
      );
    return this.box.seal(password, sealContext(user, field));
  }

  /**
   * A stored password in clear: sealed ones opened with the configured keys; one stored in plain text (by
   * an older release) or sealed with an older key is sealed again with the current key on the way.
   */
  private async openSecret(user: string, server: string, field: string, stored: string): Promise<string> {
    if (stored === "") return "";
    const key = `${server}/${field}`;
    const context = sealContext(user, key);
    let plain = stored;
    if (SecretBox.isSealed(stored)) {
      try {
        if (!this.box) throw new SealError("no key is configured (adapters.irc.passwordKeysEnv)");
        plain = this.box.open(stored, context);
      } catch (err) {
        this.ctx().log.warn({ err, jid: user, server, field }, "stored IRC password cannot be opened");
        throw new GatewayError(
          "internal-server-error",
          `Your stored ${field === "saslPassword" ? "SASL" : "NickServ"} password for ${server} can no longer be read by the gateway; set it again in the IRC server settings.`,
        );
      }
    }
    if (this.box?.stale(stored)) {
      const all = { ...(await this.ctx().settings.get(user)) };
      if (all[key] === stored) {
        all[key] = this.box.seal(plain, context);
        await this.ctx().settings.put(user, all);
      }
    }
    return plain;
  }
}
