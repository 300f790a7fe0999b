/**
 * The Lua scripts of a lease in Redis (a key whose value names its holder, with a TTL): the instance id's
 * lease (instance-lease.ts) and the IRC connection leases (adapters/irc/lease.ts) share them.
 */

/**
 * KEYS[1] the lease; ARGV[1] the holder, ARGV[2] the lease's life in ms. Takes the lease when it is free (also
 * when it vanished with Redis's data) or renews it when it is already ours; 1 when held by us afterwards.
 */
export const LEASE_ACQUIRE = `
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** KEYS[1] the lease; ARGV[1] the holder. Deletes the lease only if it is ours. */
export const LEASE_RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
