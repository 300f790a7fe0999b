/**
 * Which of the account's numbers a user sends from, and which user an inbound SMS belongs to.
 *
 * - Dedicated: number N belongs to user U; everything texted to N goes to U. Numbers the config assigns
 *   (`numbers.dedicated`) are read from the config on every lookup: the config is their source of truth, so
 *   they keep working when Redis loses its data (restart without persistence, FLUSHALL, failover to an empty
 *   replica) and cannot be taken over by a command. Numbers an administrator assigns by command live in
 *   Redis.
 * - Pool: numbers shared by many users. The first time U texts contact C, U gets a pool number not yet bound
 *   to C, and (number, C) → U is stored, so C's replies reach U. A binding lasts while it is used: every
 *   message, either way, starts its idle time again, and after `poolBindingIdleSeconds` without one it
 *   expires and the number is free for C and another user. When every pool number is bound to C for other
 *   users, U gets resource-constraint (administrators are told who holds each number, and since when).
 */
import type { RedisClient } from "../../src/store/redis-client.js";
import type { KeyBuilder } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { LuaScript } from "../../src/store/lua.js";

/** Version of the stored pool binding value (`{v, user, since}`); a bare JID is a binding from before it. */
const BINDING_VERSION = 1;

// Shared by the scripts: the user a binding value names (a bare JID from before versioned values).
const OWNER = `
local function owner(value)
  if not value then return nil end
  if string.sub(value, 1, 1) ~= '{' then return value end
  local ok, binding = pcall(cjson.decode, value)
  if ok and type(binding) == 'table' then return binding.user end
  return nil
end`;

// KEYS[1] = the user's binding for the contact (→ number), KEYS[2] = the user's bindings (sorted set of
// "number contact" by last use), KEYS[3..] = the (pool number, contact) keys (→ binding value).
// ARGV[1] = user, ARGV[2] = contact, ARGV[3] = idle seconds, ARGV[4] = now (ms), ARGV[5..] = the pool
// numbers in the order of KEYS[3..]. Returns {1, number}, or {0, value of each pool key} when every number
// is bound to the contact for someone else. Every binding it touches gets the idle time again.
const BIND = new LuaScript(`${OWNER}
local user, contact, ttl, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local function used(number)
  redis.call('SET', KEYS[1], number, 'EX', ttl)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000)
  redis.call('ZADD', KEYS[2], now, number .. ' ' .. contact)
  redis.call('EXPIRE', KEYS[2], ttl)
  return {1, number}
end
local mine = redis.call('GET', KEYS[1])
for i = 3, #KEYS do
  if ARGV[i + 2] == mine and owner(redis.call('GET', KEYS[i])) == user then
    redis.call('EXPIRE', KEYS[i], ttl)
    return used(mine)
  end
end
local value = cjson.encode({v = ${BINDING_VERSION}, user = user, since = now})
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], value, 'NX', 'EX', ttl) then return used(ARGV[i + 2]) end
  -- A binding from before bindings expired has no TTL: its idle time starts now.
  if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIRE', KEYS[i], ttl) end
end
local holders = {0}
for i = 3, #KEYS do holders[#holders + 1] = redis.call('GET', KEYS[i]) or '' end
return holders`);

// KEYS[1] = (pool number, contact), KEYS[2] = the owner's binding for the contact, KEYS[3] = the owner's
// bindings. ARGV[1] = owner, ARGV[2] = idle seconds, ARGV[3] = now (ms), ARGV[4] = "number contact".
// Starts the idle time again when the binding still belongs to the owner.
const TOUCH = new LuaScript(`${OWNER}
if owner(redis.call('GET', KEYS[1])) ~= ARGV[1] then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[4])
redis.call('EXPIRE', KEYS[3], ttl)
return 1`);

// KEYS[1] = (pool number, contact), KEYS[2] = the user's binding for the contact; ARGV[1] = user.
// Deletes the binding only while it is the user's (it may have expired and gone to someone else).
const RELEASE = new LuaScript(`${OWNER}
if owner(redis.call('GET', KEYS[1])) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1`);

/** Who holds a pool number for a contact, and since when (unknown for a binding older than versioning). */
export interface PoolBinding {
  user: string;
  since: Date | undefined;
}

/** A stored binding value: versioned JSON, or the bare JID a release before versioned values stored. */
export function parseBinding(value: string): PoolBinding | null {
  if (!value) return null;
  if (!value.startsWith("{")) return { user: value, since: undefined };
  try {
    const parsed = JSON.parse(value) as { user?: unknown; since?: unknown };
    if (typeof parsed.user !== "string") return null;
    return {
      user: parsed.user,
      since: typeof parsed.since === "number" ? new Date(parsed.since) : undefined,
    };
  } catch {
    return null;
  }
}

/** "30 days", "2 hours", "90 s": the idle time as an administrator reads it. */
function idleText(seconds: number): string {
  for (const [unit, size] of [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ] as const)
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  return `${seconds} s`;
}

export interface NumberDirectoryOptions {
  /** Numbers shared by every pool user (config `numbers.pool`). */
  pool: readonly string[];
  /** Number → user, from the config (`numbers.dedicated`): always authoritative, never stored. */
  dedicated: Readonly<Record<string, string>>;
  /** How long a pool binding lasts without a message either way. */
  poolBindingIdleSeconds: number;
  /** Bare JIDs told who holds the pool numbers when none is free. */
  admins: readonly string[];
}

export class NumberDirectory {
  private readonly pool: readonly string[];
  private readonly configOwner: ReadonlyMap<string, string>;
  private readonly configNumber: ReadonlyMap<string, string>;
  private readonly idleSeconds: number;
  private readonly admins: ReadonlySet<string>;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    options: NumberDirectoryOptions,
  ) {
    this.pool = options.pool;
    const entries = Object.entries(options.dedicated).map(([n, u]): [string, string] => [n, u.toLowerCase()]);
    this.configOwner = new Map(entries);
    this.configNumber = new Map(entries.map(([n, u]) => [u, n]));
    this.idleSeconds = options.poolBindingIdleSeconds;
    this.admins = new Set(options.admins.map((a) => a.toLowerCase()));
  }

  /** Assigns a number to a user by command (stored in Redis). Config-assigned numbers and users are refused. */
  async assign(number: string, user: string): Promise<void> {
    if (this.pool.includes(number))
      throw new GatewayError(
        "conflict",
        `${number} is a pool number; remove it from the pool before assigning it.`,
      );
    this.refuseConfigNumber(number);
    const configured = this.configNumber.get(user.toLowerCase());
    if (configured)
      throw new GatewayError(
        "conflict",
        `The configuration gives ${user} the number ${configured} (numbers.dedicated); change it there.`,
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

  /** Removes a command-assigned number's owner; false when nobody had it. Config-assigned ones are refused. */
  async unassign(number: string): Promise<boolean> {
    this.refuseConfigNumber(number);
    const user = await this.redis.hget(this.key("owners"), number);
    if (!user) return false;
    await this.redis
      .multi()
      .hdel(this.key("owners"), number)
      .hdel(this.key("dedicated-by-user"), user)
      .exec();
    return true;
  }

  private refuseConfigNumber(number: string): void {
    const owner = this.configOwner.get(number);
    if (owner)
      throw new GatewayError(
        "conflict",
        `${number} is assigned to ${owner} in the configuration (numbers.dedicated); change it there.`,
      );
  }

  /** The user's own number: the config's assignment, else one an administrator assigned. */
  async dedicatedOf(user: string): Promise<string | null> {
    const configured = this.configNumber.get(user.toLowerCase());
    if (configured) return configured;
    const stored = await this.redis.hget(this.key("dedicated-by-user"), user);
    // A number the config has since given to someone else (or put in the pool) is no longer this user's.
    if (!stored || this.configOwner.has(stored) || this.pool.includes(stored)) return null;
    return stored;
  }

  /** Every dedicated number → its user; the config's assignments win over stored ones. */
  async assignments(): Promise<Record<string, string>> {
    const stored = await this.redis.hgetall(this.key("owners"));
    const configUsers = new Set(this.configNumber.keys());
    const byCommand = Object.entries(stored).filter(
      ([n, u]) => !this.configOwner.has(n) && !configUsers.has(u.toLowerCase()),
    );
    return Object.fromEntries([...byCommand, ...this.configOwner]);
  }

  /** Whether the config (rather than a command) assigns the number. */
  isConfigured(number: string): boolean {
    return this.configOwner.has(number);
  }

  /**
   * The pool number the user sends to `contact` from, binding one on first use; every use starts the
   * binding's idle time again.
   */
  async poolNumberFor(user: string, contact: string): Promise<string> {
    if (this.pool.length === 0)
      throw new GatewayError(
        "service-unavailable",
        "This gateway has no shared numbers; ask an administrator for one.",
      );
    const keys = [
      this.key("pool-user", user, contact),
      this.key("pool-bindings", user),
      ...this.pool.map((n) => this.key("pool", n, contact)),
    ];
    const answer = (await BIND.run(this.redis, keys, [
      user,
      contact,
      this.idleSeconds,
      Date.now(),
      ...this.pool,
    ])) as [number, ...(string | null)[]];
    const [bound, ...rest] = answer;
    if (bound === 1 && typeof rest[0] === "string") return rest[0];
    throw this.exhausted(user, contact, rest);
  }

  /** resource-constraint; an administrator also learns who holds each number and since when. */
  private exhausted(user: string, contact: string, values: readonly (string | null)[]): GatewayError {
    const text =
      `Every shared number is already in use with ${contact} by other users, so their replies could not be ` +
      "told apart. Ask an administrator for a dedicated number or a larger pool.";
    if (!this.admins.has(user.toLowerCase())) return new GatewayError("resource-constraint", text);
    const holders = this.pool.map((number, i) => {
      const binding = parseBinding(values[i] ?? "");
      if (!binding) return `${number}: free again`;
      const since = binding.since
        ? `since ${binding.since.toISOString()}`
        : "since before bindings were dated";
      return `${number}: ${binding.user} ${since}`;
    });
    return new GatewayError(
      "resource-constraint",
      `${text} Held with ${contact}: ${holders.join("; ")}. A binding is released after ` +
        `${idleText(this.idleSeconds)} without a message.`,
    );
  }

  /** The user an SMS from `from` to our number `to` belongs to, or null when it cannot be routed. */
  async recipientOf(to: string, from: string): Promise<string | null> {
    const configured = this.configOwner.get(to);
    if (configured) return configured;
    if (!this.pool.includes(to)) return this.redis.hget(this.key("owners"), to);
    const binding = parseBinding((await this.redis.get(this.key("pool", to, from))) ?? "");
    if (!binding) return null;
    await TOUCH.run(
      this.redis,
      [
        this.key("pool", to, from),
        this.key("pool-user", binding.user, from),
        this.key("pool-bindings", binding.user),
      ],
      [binding.user, this.idleSeconds, Date.now(), `${to} ${from}`],
    );
    return binding.user;
  }

  /** Forgets everything about the user: a command-assigned number and pool bindings. */
  async forget(user: string): Promise<void> {
    const stored = await this.redis.hget(this.key("dedicated-by-user"), user);
    if (stored && !this.configOwner.has(stored)) await this.unassign(stored);
    const bindings = [
      ...(await this.redis.zrange(this.key("pool-bindings", user), "0", "-1")),
      // A release before expiring bindings kept them in a plain set.
      ...(await this.redis.smembers(this.key("pool-contacts", user))),
    ];
    for (const binding of bindings) {
      const [poolNumber = "", contact = ""] = binding.split(" ");
      await RELEASE.run(
        this.redis,
        [this.key("pool", poolNumber, contact), this.key("pool-user", user, contact)],
        [user],
      );
    }
    await this.redis.del(this.key("pool-bindings", user), this.key("pool-contacts", user));
  }
}
