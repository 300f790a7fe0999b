/**
 * Groups of alert recipients: a Redis list key("group", name) of bare JIDs in rotation order (an on-call
 * rotation: the first is on call), plus a set key("groups") of the names. Written only here, by admins;
 * read by the notify engine.
 */
import type { RedisClient } from "../../../src/store/redis-client.js";
import type { KeyBuilder } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";
import { MAX_GROUPS, MAX_GROUP_MEMBERS } from "./limits.js";

/**
 * A group name: as the notify config names groups (a token's `groups`), letters, digits, '.', '_', '-',
 * case kept; no "@", so it never reads as a JID among an alert's recipients.
 */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;

export function checkGroupName(input: string): string {
  const name = input.trim();
  if (!GROUP_NAME.test(name))
    throw new GatewayError(
      "not-acceptable",
      `"${input.trim()}" is not a group name: use up to 64 letters, digits, ".", "_" or "-", like "ops-oncall".`,
    );
  return name;
}

/** Members as typed (one per line, or separated by commas or spaces) → bare JIDs, order kept, no repeats. */
export function checkMembers(input: readonly string[]): string[] {
  const jids = input.flatMap((line) => line.split(/[\s,]+/)).filter((s) => s !== "");
  const bad = jids.filter((j) => !BARE_JID.test(j));
  if (bad.length)
    throw new GatewayError(
      "jid-malformed",
      `Not a bare JID: ${bad.slice(0, 5).join(", ")}${bad.length > 5 ? ` and ${bad.length - 5} more` : ""}.`,
    );
  const unique = [...new Set(jids.map((j) => j.toLowerCase()))];
  if (unique.length === 0) throw new GatewayError("not-acceptable", "A group needs at least one member.");
  if (unique.length > MAX_GROUP_MEMBERS)
    throw new GatewayError("not-acceptable", `A group has at most ${MAX_GROUP_MEMBERS} members.`);
  return unique;
}

// KEYS: the names set, the group's list. ARGV: name, most groups, members…
// Returns 1 when stored, 0 when the group is new and there are already too many.
const DEFINE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('SADD', KEYS[1], ARGV[1])
return 1`;

export class GroupStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: KeyBuilder,
  ) {}

  private listKey(name: string): string {
    return this.key("group", name);
  }

  /** Creates or replaces a group, atomically. */
  async define(name: string, members: readonly string[]): Promise<void> {
    const stored = await this.redis.eval(
      DEFINE,
      2,
      this.key("groups"),
      this.listKey(name),
      name,
      MAX_GROUPS,
      ...members,
    );
    if (stored !== 1)
      throw new GatewayError(
        "resource-constraint",
        `There are already ${MAX_GROUPS} groups; delete one first.`,
      );
  }

  /** Moves the first member (on call) to the end; returns the new order, or null for no such group. */
  async rotate(name: string): Promise<string[] | null> {
    const key = this.listKey(name);
    // LMOVE of a list onto itself is atomic: every reader sees the old or the new order, never a gap.
    const moved = await this.redis.lmove(key, key, "LEFT", "RIGHT");
    return moved === null ? null : this.redis.lrange(key, 0, -1);
  }

  /** true when the group existed. */
  async delete(name: string): Promise<boolean> {
    const [[, deleted] = [null, 0]] =
      (await this.redis.multi().del(this.listKey(name)).srem(this.key("groups"), name).exec()) ?? [];
    return deleted === 1;
  }

  async members(name: string): Promise<string[]> {
    return this.redis.lrange(this.listKey(name), 0, -1);
  }

  async names(): Promise<string[]> {
    return (await this.redis.smembers(this.key("groups"))).sort();
  }

  /** Each group with its size and who is on call. */
  async summary(): Promise<{ name: string; size: number; onCall: string | undefined }[]> {
    const names = await this.names();
    const pipeline = this.redis.pipeline();
    for (const n of names) pipeline.llen(this.listKey(n)).lindex(this.listKey(n), 0);
    const answers = (await pipeline.exec()) ?? [];
    return names.map((name, i) => ({
      name,
      size: Number(answers[2 * i]?.[1] ?? 0),
      onCall: (answers[2 * i + 1]?.[1] as string | null) ?? undefined,
    }));
  }
}
