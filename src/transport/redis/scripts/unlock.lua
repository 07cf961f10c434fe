--[[
unlock.lua: release the `unacked_mutex` only if we still hold it (redis-py's Lock.release).

KEYS[1]     unacked_mutex  string  the token of the holder, set with SET NX PX
ARGV[1]     our token

Returns 1 when released, 0 when the lock had expired or belongs to someone else (left alone).
--]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
