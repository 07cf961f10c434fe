--[[
ack.lua: settle delivered messages (kombu's QoS.ack: ZREM unacked_index, HDEL unacked), in one
command instead of a MULTI of three or four.

KEYS[1]     unacked        hash  tag -> JSON [envelope, exchange, routing_key]
KEYS[2]     unacked_index  zset  tag -> time of delivery
KEYS[3]     holders        hash  tag -> holder (celeriac only), cleared when ARGV[1] is "1"
ARGV[1]     "1" to clear holders too, else "0"
ARGV[2..]   the tags fetch.lua gave (at most a few thousand: they are unpacked onto Lua's stack)

Returns the number of entries removed from `unacked` (a tag already settled is skipped, so a
retried run changes nothing more).
--]]
local tags = { unpack(ARGV, 2) }
redis.call('ZREM', KEYS[2], unpack(tags))
if ARGV[1] == '1' then redis.call('HDEL', KEYS[3], unpack(tags)) end
return redis.call('HDEL', KEYS[1], unpack(tags))
