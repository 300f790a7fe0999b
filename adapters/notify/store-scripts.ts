/**
 * The Lua scripts of the alert store (store.ts): creating an alert in steps, claiming due steps, the
 * per-channel rate and scheduling. Each runs by its digest (src/store/lua.ts).
 */
import { LuaScript } from "../../src/store/lua.js";

/** Milliseconds since the epoch, by Redis's clock (every instance agrees on it). */
const NOW_MS =
  "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/**
 * First of the creation's scripts. KEYS: alert, idempotency ('' = none), dedup ('' = none). ARGV: pending
 * ttl, alert fields (JSON object). Returns {0, answer} for a replay, {1, id} when the dedup key names an
 * alert still open, {2, ''} when the alert record is written, marked pending (invisible to every reader).
 */
export const CREATE_BEGIN = new LuaScript(`
if KEYS[2] ~= '' then
  local prev = redis.call('GET', KEYS[2])
  if prev then return {0, prev} end
end
if KEYS[3] ~= '' then
  local open = redis.call('GET', KEYS[3])
  if open then return {1, open} end
end
local fields = cjson.decode(ARGV[2])
local flat = {'pending', '1'}
for k, v in pairs(fields) do flat[#flat + 1] = k; flat[#flat + 1] = v end
redis.call('HSET', KEYS[1], unpack(flat))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return {2, ''}
`);

/**
 * One chunk of recipients. KEYS: state, recipients set, staged steps, then the open set of each recipient.
 * ARGV: pending ttl, ttl, now ISO, alert id, then one step member per recipient. The steps are staged, not
 * due: nothing runs before the commit.
 */
export const CREATE_CHUNK = new LuaScript(`
${NOW_MS}
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS - 3 do
  local m = ARGV[4 + i]
  local jid = cjson.decode(m)[2]
  redis.call('HSET', KEYS[1], jid .. ' xmpp queued', ARGV[3])
  redis.call('SADD', KEYS[2], jid)
  redis.call('ZADD', KEYS[3], now, m)
  redis.call('ZADD', KEYS[3 + i], now, ARGV[4])
  redis.call('EXPIRE', KEYS[3 + i], ttl)
end
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[1])) end
return 1
`);

/**
 * The commit. KEYS: alert, state, recipients set, staged steps, timers, idempotency ('' = none), dedup
 * ('' = none), recent index. ARGV: ttl, idempotency ttl, answer, recent kept, alert id. Returns {0, answer}
 * or {1, id} when another request won meanwhile (the caller removes this one), {3, ''} when the pending
 * record is gone (it expired), {2, ''} when the alert is stored and its steps are due.
 */
export const CREATE_COMMIT = new LuaScript(`
${NOW_MS}
if KEYS[6] ~= '' then
  local prev = redis.call('GET', KEYS[6])
  if prev then return {0, prev} end
end
if KEYS[7] ~= '' then
  local open = redis.call('GET', KEYS[7])
  if open then return {1, open} end
end
if redis.call('HEXISTS', KEYS[1], 'pending') == 0 then return {3, ''} end
local ttl = tonumber(ARGV[1])
redis.call('HDEL', KEYS[1], 'pending')
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('ZUNIONSTORE', KEYS[5], 2, KEYS[5], KEYS[4])
  redis.call('DEL', KEYS[4])
end
if KEYS[7] ~= '' then redis.call('SET', KEYS[7], ARGV[5], 'EX', ttl) end
if KEYS[6] ~= '' then redis.call('SET', KEYS[6], ARGV[3], 'EX', tonumber(ARGV[2])) end
redis.call('ZADD', KEYS[8], now, ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[8], 0, -1 - tonumber(ARGV[4]))
return {2, ''}
`);

/**
 * KEYS: timers, running. ARGV: lease ms, most to claim. Moves due (and stale running) steps to running;
 * returns member, due time pairs (a stale one's due time is now).
 */
export const CLAIM = new LuaScript(`
${NOW_MS}
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(stale) do
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), m)
end
local out = {}
for _, m in ipairs(stale) do out[#out + 1] = m; out[#out + 1] = tostring(now) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due, 2 do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), due[i])
  out[#out + 1] = due[i]; out[#out + 1] = due[i + 1]
end
return out
`);

/**
 * KEYS: the channel's counter of the current window. ARGV: sends allowed per window, window ms. Takes one
 * send of the window's budget: 1, or 0 (nothing counted) when the window is spent.
 */
export const RATE_SLOT = new LuaScript(`
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
`);

/** KEYS: timers. ARGV: member, delay ms, mode ('' = add, 'XX' = only move an existing one). */
export const SCHEDULE = new LuaScript(`
${NOW_MS}
if ARGV[3] == 'XX' then return redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1]) end
return redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
`);
