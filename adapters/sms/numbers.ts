/**
 * Which of the account's numbers a user sends from, and which user an inbound SMS belongs to.
 *
 * - Dedicated: number N belongs to user U; everything texted to N goes to U.
 * - Pool: numbers shared by many users. The first time U texts contact C, U gets a pool number not yet bound
 *   to C, and (number, C) → U is stored, so C's replies reach U; the binding is sticky. When every pool number
 *   is already bound to C for other users, U gets resource-constraint.
 */
import type { Redis } from "ioredis";
import type { KeyBuilder } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";

// KEYS[1] = user's binding for the contact, KEYS[2..] = (pool number, contact) keys; ARGV[1] = user,
// ARGV[2..] = the pool numbers in the same order. Returns the number or false.
const BIND = `
local mine = redis.call('GET', KEYS[1])
if mine then return mine end
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[1], 'NX') then
    redis.call('SET', KEYS[1], ARGV[i])
    return ARGV[i]
  end
end
return false`;

export class NumberDirectory {
  constructor(
    private readonly redis: Redis,
    private readonly key: KeyBuilder,
    private readonly pool: readonly string[],
  ) {}

  /** Seeds dedicated numbers from the config (config wins over an earlier assignment of the same number). */
  async seed(dedicated: Record<string, string>): Promise<void> {
    for (const [number, user] of Object.entries(dedicated)) await this.assign(number, user);
  }

  async assign(number: string, user: string): Promise<void> {
    if (this.pool.includes(number))
      throw new GatewayError(
        "conflict",
        `${number} is a pool number; remove it from the pool before assigning it.`,
      );
    const previous = await this.redis.hget(this.key("owners"), number);
    const multi = this.redis.multi();
    if (previous && previous !== user) multi.hdel(this.key("dedicated-by-user"), previous);
    const old = await this.redis.hget(this.key("dedicated-by-user"), user);
    if (old && old !== number) multi.hdel(this.key("owners"), old);
    await multi
      .hset(this.key("owners"), number, user)
      .hset(this.key("dedicated-by-user"), user, number)
      .exec();
  }

  /** Removes a dedicated number's owner; false when nobody had it. */
  async unassign(number: string): Promise<boolean> {
    const user = await this.redis.hget(this.key("owners"), number);
    if (!user) return false;
    await this.redis
      .multi()
      .hdel(this.key("owners"), number)
      .hdel(this.key("dedicated-by-user"), user)
      .exec();
    return true;
  }

  async dedicatedOf(user: string): Promise<string | null> {
    return this.redis.hget(this.key("dedicated-by-user"), user);
  }

  async assignments(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.key("owners"));
  }

  /** The pool number the user sends to `contact` from, binding one on first use. */
  async poolNumberFor(user: string, contact: string): Promise<string> {
    if (this.pool.length === 0)
      throw new GatewayError(
        "service-unavailable",
        "This gateway has no shared numbers; ask an administrator for one.",
      );
    const keys = [
      this.key("pool-user", user, contact),
      ...this.pool.map((n) => this.key("pool", n, contact)),
    ];
    const number = (await this.redis.eval(BIND, keys.length, ...keys, user, ...this.pool)) as string | null;
    if (!number)
      throw new GatewayError(
        "resource-constraint",
        `Every shared number is already in use with ${contact} by other users, so their replies could not be ` +
          "told apart. Ask an administrator for a dedicated number or a larger pool.",
      );
    await this.redis.sadd(this.key("pool-contacts", user), `${number} ${contact}`);
    return number;
  }

  /** The user an SMS from `from` to our number `to` belongs to, or null when it cannot be routed. */
  async recipientOf(to: string, from: string): Promise<string | null> {
    const owner = await this.redis.hget(this.key("owners"), to);
    if (owner) return owner;
    if (!this.pool.includes(to)) return null;
    return this.redis.get(this.key("pool", to, from));
  }

  /** Forgets everything about the user: dedicated number and pool bindings. */
  async forget(user: string): Promise<void> {
    const number = await this.dedicatedOf(user);
    if (number) await this.unassign(number);
    const bindings = await this.redis.smembers(this.key("pool-contacts", user));
    const multi = this.redis.multi();
    for (const binding of bindings) {
      const [poolNumber = "", contact = ""] = binding.split(" ");
      multi.del(this.key("pool", poolNumber, contact), this.key("pool-user", user, contact));
    }
    await multi.del(this.key("pool-contacts", user)).exec();
  }
}
