/**
 * Proof that a phone number or an email address belongs to the user who typed it: a code sent to it, which
 * the user enters with the "Verify" command. A pending code lives in Redis with a TTL (key("verify", kind,
 * jid): the address, a hash of the code, the wrong attempts so far), so any instance can check it.
 *
 * Sending costs money (SMS) and can annoy a stranger, so every send is counted first, atomically, against
 * three limits: codes per user per hour, codes per address per day, code SMS per hour for the whole gateway.
 * A refusal sends nothing and counts nothing.
 */
import { createHash, randomInt, timingSafeEqual } from "node:crypto";
import type { RedisClient } from "../../../src/store/redis-client.js";
import type { KeyBuilder } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";
import type { ContactStore } from "./contacts.js";
import { CODE_DIGITS, MAX_CODE_ATTEMPTS, type PeopleConfig } from "./limits.js";

export type AddressKind = "phone" | "email";
const KINDS: readonly AddressKind[] = ["phone", "email"];

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Counters outlive their window by this much, so a window's count is never read after it expired early. */
const COUNTER_GRACE_MS = 60_000;

// KEYS: user-hour counter, address-day counter, gateway sms-hour counter ("" for email).
// ARGV: user limit, address limit, sms limit, user ttl ms, address ttl ms, sms ttl ms.
// Returns 0 (counted), 1 (user limit), 2 (address limit), 3 (gateway SMS limit).
const TAKE = `
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then return 1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 2 end
if KEYS[3] ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[3]) then return 3 end
redis.call('INCR', KEYS[1]); redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('INCR', KEYS[2]); redis.call('PEXPIRE', KEYS[2], ARGV[5])
if KEYS[3] ~= '' then redis.call('INCR', KEYS[3]); redis.call('PEXPIRE', KEYS[3], ARGV[6]) end
return 0`;

// KEYS: a pending code. ARGV: most attempts. Counts a wrong attempt; returns the attempts left (0: the code is
// now void and deleted), or -1 when the code is gone (expired meanwhile; never recreated without its TTL).
const WRONG = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]); return 0 end
return tonumber(ARGV[1]) - n`;

/** A code request refused by one of the limits; nothing was sent. */
export class CodeLimitError extends GatewayError {
  constructor(
    readonly limit: "user" | "address" | "gateway",
    text: string,
  ) {
    super("policy-violation", text, { type: "wait" });
  }
}

/** Sends a code; throws when the channel could not take it. */
export type CodeSender = (kind: AddressKind, address: string, code: string) => Promise<void>;

export interface VerificationMetrics {
  codeSent(kind: AddressKind): void;
  codeRefused(kind: AddressKind, limit: CodeLimitError["limit"]): void;
  codeFailed(kind: AddressKind): void;
  checked(outcome: "verified" | "wrong" | "none-pending" | "void"): void;
}

function hhmm(ms: number): string {
  return new Date(ms).toISOString().slice(11, 16);
}

function codeHash(jid: string, kind: AddressKind, address: string, code: string): Buffer {
  return createHash("sha256").update(`${jid}\0${kind}\0${address}\0${code}`).digest();
}

export class Verifier {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
    private readonly contacts: ContactStore,
    private readonly config: PeopleConfig,
    private readonly send: CodeSender,
    private readonly metrics: VerificationMetrics,
    private readonly now: () => number = Date.now,
  ) {}

  private pendingKey(kind: AddressKind, jid: string): string {
    return this.key("verify", kind, jid.toLowerCase());
  }

  /** The address waiting for its code, if any. */
  async pending(jid: string, kind: AddressKind): Promise<string | undefined> {
    return (await this.redis.hget(this.pendingKey(kind, jid), "address")) ?? undefined;
  }

  /** Counts one code against the limits, or throws CodeLimitError (nothing counted). */
  private async take(jid: string, kind: AddressKind, address: string): Promise<void> {
    const now = this.now();
    const hour = Math.floor(now / HOUR_MS);
    const day = Math.floor(now / DAY_MS);
    const hourEnd = (hour + 1) * HOUR_MS;
    const dayEnd = (day + 1) * DAY_MS;
    const result = await this.redis.eval(
      TAKE,
      3,
      this.key("codes-user", jid.toLowerCase(), String(hour)),
      this.key("codes-address", address, String(day)),
      kind === "phone" ? this.key("codes-sms", String(hour)) : "",
      this.config.codesPerUserPerHour,
      this.config.codesPerAddressPerDay,
      this.config.codeSmsPerHour,
      hourEnd - now + COUNTER_GRACE_MS,
      dayEnd - now + COUNTER_GRACE_MS,
      hourEnd - now + COUNTER_GRACE_MS,
    );
    if (result === 1)
      throw new CodeLimitError(
        "user",
        `You have asked for ${this.config.codesPerUserPerHour} verification codes this hour, the most allowed; ` +
          `ask again after ${hhmm(hourEnd)} UTC. No code was sent.`,
      );
    if (result === 2)
      throw new CodeLimitError(
        "address",
        `${address} has been sent ${this.config.codesPerAddressPerDay} verification codes today, the most allowed; ` +
          `try again after ${hhmm(dayEnd)} UTC. No code was sent.`,
      );
    if (result === 3)
      throw new CodeLimitError(
        "gateway",
        `The gateway has sent as many verification SMS this hour as it may; try again after ${hhmm(hourEnd)} UTC. ` +
          "No code was sent.",
      );
  }

  /**
   * Sends a new code to the address (replacing any pending code of that kind), after counting it against
   * the limits. Throws CodeLimitError (nothing sent) or the sender's error (the code is void).
   */
  async request(jid: string, kind: AddressKind, address: string): Promise<void> {
    try {
      await this.take(jid, kind, address);
    } catch (err) {
      if (err instanceof CodeLimitError) this.metrics.codeRefused(kind, err.limit);
      throw err;
    }
    const code = String(randomInt(0, 10 ** CODE_DIGITS)).padStart(CODE_DIGITS, "0");
    const key = this.pendingKey(kind, jid);
    await this.redis
      .multi()
      .del(key)
      .hset(key, {
        v: "1",
        address,
        hash: codeHash(jid, kind, address, code).toString("hex"),
        attempts: "0",
      })
      .pexpire(key, this.config.codeTtlSeconds * 1000)
      .exec();
    try {
      await this.send(kind, address, code);
    } catch (err) {
      await this.redis.del(key);
      this.metrics.codeFailed(kind);
      // The channel's own refusal (a SendRefused, a MaybeSent) already speaks to the user.
      if (err instanceof GatewayError) throw err;
      throw new GatewayError(
        "service-unavailable",
        `The code could not be sent to ${address}; try again later.`,
        {
          type: "wait",
          cause: err,
        },
      );
    }
    this.metrics.codeSent(kind);
  }

  /** Forgets a pending code (the user changed their mind). */
  async cancel(jid: string, kind: AddressKind): Promise<void> {
    await this.redis.del(this.pendingKey(kind, jid));
  }

  /**
   * Checks a code the user entered against their pending codes; on a match the address is stored as
   * verified and returned. A wrong code counts as an attempt against each pending code; the last allowed
   * attempt voids it. Throws GatewayError("not-acceptable") with the reason.
   */
  async check(jid: string, input: string): Promise<{ kind: AddressKind; address: string }> {
    const code = input.replace(/\s+/g, "");
    const pending: { kind: AddressKind; key: string; address: string; hash: string }[] = [];
    for (const kind of KINDS) {
      const key = this.pendingKey(kind, jid);
      const h = await this.redis.hgetall(key);
      if (h.address && h.hash) pending.push({ kind, key, address: h.address, hash: h.hash });
    }
    const minutes = Math.round(this.config.codeTtlSeconds / 60);
    if (pending.length === 0) {
      this.metrics.checked("none-pending");
      throw new GatewayError(
        "not-acceptable",
        `No code is waiting for you: it expired (a code is valid for ${minutes >= 1 ? `${minutes} minute(s)` : `${this.config.codeTtlSeconds} s`}) ` +
          `or was already used. Ask for a new one with "My alert contacts".`,
      );
    }
    if (new RegExp(`^\\d{${CODE_DIGITS}}$`).test(code))
      for (const p of pending) {
        const expected = Buffer.from(p.hash, "hex");
        const given = codeHash(jid, p.kind, p.address, code);
        if (expected.length !== given.length || !timingSafeEqual(expected, given)) continue;
        // Only one check may use the code: the one whose DEL removed it.
        if ((await this.redis.del(p.key)) === 0) continue;
        await this.contacts.setVerified(jid, p.kind, p.address);
        this.metrics.checked("verified");
        return { kind: p.kind, address: p.address };
      }
    let left = 0;
    for (const p of pending) {
      const remaining = (await this.redis.eval(WRONG, 1, p.key, MAX_CODE_ATTEMPTS)) as number;
      left = Math.max(left, remaining);
    }
    this.metrics.checked(left ? "wrong" : "void");
    throw new GatewayError(
      "not-acceptable",
      left
        ? `That code is wrong; ${left} attempt(s) left.`
        : `That code is wrong, and too many wrong codes were entered: ask for a new one with "My alert contacts".`,
    );
  }
}
