/**
 * Users' addresses on the mail domain: alias → bare JID in one Redis hash, one owner per alias, so mail to
 * `alias@mail.example.org` reaches exactly one XMPP user.
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { BOUNCE_PREFIX } from "./bounces.js";
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
  if (lower.startsWith(BOUNCE_PREFIX))
    throw new GatewayError(
      "not-acceptable",
      `An alias cannot start with "${BOUNCE_PREFIX}"; choose another one.`,
    );
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

// Deletes field ARGV[1] of KEYS[1] only when it still holds ARGV[2]: nobody frees somebody else's alias.
const RELEASE = `if redis.call("HGET", KEYS[1], ARGV[1]) == ARGV[2] then return redis.call("HDEL", KEYS[1], ARGV[1]) else return 0 end`;

export class AliasDirectory {
  private readonly hash: string;

  constructor(
    private readonly redis: RedisClient,
    key: KeyBuilder,
  ) {
    this.hash = key("aliases");
  }

  /** The user an alias belongs to, or null. */
  owner(alias: string): Promise<string | null> {
    return this.redis.hget(this.hash, alias.toLowerCase());
  }

  /** Every alias and its user. */
  all(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.hash);
  }

  /** Gives `alias` to `user` (keeping it when it is already theirs); throws conflict when it is taken. */
  async claim(alias: string, user: string): Promise<void> {
    if ((await this.redis.hsetnx(this.hash, alias, user)) === 1) return;
    if ((await this.owner(alias)) !== user)
      throw new GatewayError("conflict", `The alias "${alias}" is taken; choose another one.`);
  }

  /** Frees the alias if it belongs to `user`. */
  async release(alias: string, user: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.hash, alias, user);
  }

  /** Frees the alias whoever has it; returns the user it belonged to. */
  async remove(alias: string): Promise<string | null> {
    const owner = await this.owner(alias);
    if (owner) await this.release(alias.toLowerCase(), owner);
    return owner;
  }
}
