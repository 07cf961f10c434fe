--[[
push.lua: LPUSH one event-loop turn's messages, at most once per batch id.

KEYS[1]     record     string  `<prefix>celeriac.push.<batch id>`, set for a minute by the run that pushed
KEYS[2..]   the lists, one per group of values
ARGV[1..n]  per list (n = #KEYS - 1): how many of the values that follow go to it
ARGV[n+1..] the values, list after list, each group in publish order

Returns the number of values pushed: 0 when this batch already ran. A client re-sends a command
whose reply a dropped connection lost (ioredis does so on reconnect); a second LPUSH of the same
messages would run each task twice, so the re-sent batch finds its record and pushes nothing.
--]]
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 60) then return 0 end
local n = #KEYS - 1
local at = n + 1
for i = 1, n do
  local count = tonumber(ARGV[i])
  redis.call('LPUSH', KEYS[i + 1], unpack(ARGV, at, at + count - 1))
  at = at + count
end
return at - n - 1
