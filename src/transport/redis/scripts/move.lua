--[[
move.lua: settle one unacknowledged message by moving it out of `unacked` onto lists, atomically.
Used for restore (RPUSH: delivered next), reject with requeue (LPUSH: back of the queue), reject
without requeue (LPUSH onto the dead-letter list) and the visibility-timeout restore.

KEYS[1]     unacked        hash  delivery_tag -> JSON [envelope, exchange, routing_key]
KEYS[2]     unacked_index  zset  delivery_tag -> time of delivery
KEYS[3..]   destination lists (usually one)
ARGV[1]     delivery tag
ARGV[2]     expected entry: the `unacked` value read before computing ARGV[3]; "" to accept any
            (our own delivery: its tag is unique in `unacked`)
ARGV[3]     payload pushed onto every destination
ARGV[4]     "RPUSH" or "LPUSH"

Returns 1 when moved, 0 when the entry was gone (acked, or restored by another consumer) or had
changed; then nothing is pushed, so a message is never duplicated by a late settle.

Guarantee: removing the entry and pushing the payload happen together or not at all (kombu does
the same with WATCH unacked + MULTI). An index entry without a hash entry is removed, like
kombu's _remove_from_indices.
--]]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if ARGV[2] ~= '' and current ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 3, #KEYS do redis.call(ARGV[4], KEYS[i], ARGV[3]) end
return 1
