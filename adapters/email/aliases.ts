/**
 * Users' addresses on the mail domain: alias → bare JID in Redis, one owner per alias, so mail to
 * `alias@mail.example.org` reaches exactly one XMPP user.
 */
import type { Redis } from "ioredis";
import type { KeyBuilder } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { checkLocalPart } from "./codec.js";

/** RFC 2142 mailbox names (and the bounce sender) that must never belong to one user. */
export const RESERVED_ALIASES: ReadonlySet<string> = new Set([
  "postmaster",
  "abuse",
  "hostmaster",
  "webmaster",
  "mailer-daemon",
  "noreply",
  "no-reply",
]);

/**
 * The alias a user asked for, normalised to lowercase (mail hosts match local-parts without case, and
 * two users must not get `Alice` and `alice`). Throws not-acceptable with the reason.
 */
export function normaliseAlias(alias: string): string {
  const lower = alias.trim().toLowerCase();
  checkLocalPart(lower, "not-acceptable", "The alias");
  if (RESERVED_ALIASES.has(lower))
    throw new GatewayError("not-acceptable", `The alias "${lower}" is reserved; choose another one.`);
  return lower;
}

/** The default alias: the JID's localpart when it is a valid one, else none. */
export function defaultAlias(user: string): string | undefined {
  const local = user.split("@")[0] ?? "";
  try {
    return normaliseAlias(local);
  } catch {
    return undefined;
  }
}

// Deletes KEYS[1] only when it still holds ARGV[1]: a user never releases somebody else's alias.
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;

export class AliasDirectory {
  constructor(
    private readonly redis: Redis,
    private readonly key: KeyBuilder,
  ) {}

  private aliasKey(alias: string): string {
    return this.key("alias", alias);
  }

  /** The user an alias belongs to, or null. */
  owner(alias: string): Promise<string | null> {
    return this.redis.get(this.aliasKey(alias.toLowerCase()));
  }

  /** Gives `alias` to `user` (keeping it when it is already theirs); throws conflict when it is taken. */
  async claim(alias: string, user: string): Promise<void> {
    const set = await this.redis.set(this.aliasKey(alias), user, "NX");
    if (set === "OK") return;
    const owner = await this.owner(alias);
    if (owner !== user)
      throw new GatewayError("conflict", `The alias "${alias}" is taken; choose another one.`);
  }

  /** Frees the alias if it belongs to `user`. */
  async release(alias: string, user: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.aliasKey(alias), user);
  }
}
