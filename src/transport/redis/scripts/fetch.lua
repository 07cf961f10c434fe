--[[
fetch.lua: take up to ARGV[1] messages (or ARGV[7] bytes) and record each as unacknowledged, in one
atomic step.

KEYS[1]     unacked        hash  tag -> JSON [envelope, exchange, routing_key] (kombu's QoS.append)
KEYS[2]     unacked_index  zset  tag scored by the time of delivery (float seconds)
KEYS[3]     record         string  what this fetch took (celeriac only): `<prefix>celeriac.fetch.<ARGV[5]>`
KEYS[4]     holders        hash  tag -> holder (celeriac only), written when ARGV[6] is not ""
KEYS[5..]   the queue lists, priority-major then queue-minor, exactly kombu's BRPOP key order:
            q1 q2 q1<sep>3 q2<sep>3 q1<sep>6 ... (steps from priority_steps; step 0 has no suffix)
ARGV[1]     max            most messages to take
ARGV[2]     now            score for unacked_index (client clock, as kombu's time())
ARGV[3]     nqueues        number of queues (the lists of one step are KEYS[5 + s*nqueues .. ])
ARGV[4]     rotate         "1": round robin, a queue moves to the end of the order after a pop
                           (kombu's round_robin_cycle.rotate); "0": keep the order
ARGV[5]     id             a fresh uuid4 per fetch; the n-th message taken gets the tag "<id>-<n>"
ARGV[6]     holder         the consumer's hostname, or "" (workerRestoreLost off)
ARGV[7]     max bytes      stop once the envelopes taken reach this many bytes (the first is taken
                           whatever its size)
ARGV[8..]   queue names    without key prefix, same order as the queues of KEYS

Returns {header, raw 1, ..., raw n}: the envelopes in the order taken, the i-th tagged "<id>-<i>".
header is "<capped>:<queue indexes>": capped is "1" when the byte limit stopped the fetch (the lists
may hold more), else "0"; the queue indexes (1-based, into ARGV[8..]) of the messages, comma-
separated, or nothing when there is one queue. A flat reply of the envelopes alone: building a
row per message cost Redis more than taking it.

The envelope is not decoded here: decoding it (for its delivery_tag, exchange and routing key, as
kombu records them) was about half of the script's time. The tags are the script's own, unique by
construction, so nothing has to be looked up either. Each entry records the anonymous exchange and
the queue's name: a restore, kombu's or ours, puts the message back into the queue it was taken
from (through its exchange, kombu would send a fanout message back to every bound queue). A text
with braces at both ends is recorded as the envelope, other texts as a JSON string, so that
`unacked` stays readable by kombu; the worker rejects a text that is not JSON into the dead
letters as soon as it has read it.

Idempotent: a client re-sends a command whose reply a dropped connection lost (ioredis does so on
reconnect). The first run records what it took under KEYS[3] for a minute ("<n> <header>"); a second
run with the same id takes nothing new and returns those of its messages still in `unacked` (false,
a null, in place of the others), so no batch is stranded there until the visibility timeout.

One queue (the usual worker): each priority list gives its messages with one RPOP of a count
(Redis >= 6.2; older servers take the loop below). Several queues: one RPOP per message, as kombu's
round robin moves a queue to the end of the order after each message taken from it.

When it took fewer than it may (the lists are empty), it reads them last with EXISTS: a consumer with
key tracking enabled on this connection (wakeup.ts) is then told when another client next changes one.

Guarantee: a message leaves its list only in the same script that writes it to `unacked` and
`unacked_index`. Redis runs a script to completion before any other command, so no consumer crash
or disconnection can separate the two: every message is always either in a list or in `unacked`,
where the visibility-timeout restore (ours or kombu's) finds it. Nothing after the first RPOP can
raise, because Redis does not roll back a failed script.
--]]

-- Python json.dumps (ensure_ascii) of a UTF-8 string, so the entry is byte-identical to kombu's.
local ESC = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b', ['\f'] = '\\f' }
local function u(cp) return string.format('\\u%04x', cp) end
local function pystr(s)
  if not string.find(s, '[%c"\\\128-\255]') then return '"' .. s .. '"' end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = string.byte(s, i)
    local len, cp = 1, c
    if c >= 0xF0 and i + 3 <= n then
      len, cp = 4, (c % 8) * 262144 + (string.byte(s, i + 1) % 64) * 4096 + (string.byte(s, i + 2) % 64) * 64 + string.byte(s, i + 3) % 64
    elseif c >= 0xE0 and i + 2 <= n then
      len, cp = 3, (c % 16) * 4096 + (string.byte(s, i + 1) % 64) * 64 + string.byte(s, i + 2) % 64
    elseif c >= 0xC0 and i + 1 <= n then
      len, cp = 2, (c % 32) * 64 + string.byte(s, i + 1) % 64
    end
    local ch = string.sub(s, i, i)
    if ESC[ch] then
      out[#out + 1] = ESC[ch]
    elseif cp >= 0x10000 then
      cp = cp - 0x10000
      out[#out + 1] = u(0xD800 + math.floor(cp / 1024)) .. u(0xDC00 + cp % 1024)
    elseif cp < 32 or cp >= 127 then
      out[#out + 1] = u(cp)
    else
      out[#out + 1] = ch
    end
    i = i + len
  end
  return '"' .. table.concat(out) .. '"'
end

local max, now, nq = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local rotate, id = ARGV[4] == '1' and nq > 1, ARGV[5]
local nsteps = (#KEYS - 4) / nq
local holder = ARGV[6]
local maxBytes, bytes = tonumber(ARGV[7]), 0

local routing = {}
local function routingOf(q)
  routing[q] = routing[q] or (', "", ' .. pystr(ARGV[7 + q]) .. ']')
  return routing[q]
end

local prior = redis.call('GET', KEYS[3])
if prior then
  local count, header = string.match(prior, '^(%d+) (.*)$')
  local again = { header }
  local nextQ = string.gmatch(string.sub(header, 3), '%d+')
  for n = 1, tonumber(count) do
    local q = nq == 1 and 1 or tonumber(nextQ())
    local entry = redis.call('HGET', KEYS[1], id .. '-' .. n)
    if not entry then
      again[n + 1] = false
    elseif string.sub(entry, 2, 2) == '"' then -- kept as a JSON string (below)
      again[n + 1] = cjson.decode(entry)[1]
    else
      again[n + 1] = string.sub(entry, 2, #entry - #routingOf(q))
    end
  end
  return again
end

-- The writes to unacked, unacked_index and holders go out as one command each at the end (variadic
-- HSET: Redis >= 4.0): a command per message cost more than the rest of its handling.
local out, qs, n = { '' }, {}, 0
local entries, scores, holders = {}, {}, {}

local function take(raw, q)
  n = n + 1
  bytes = bytes + #raw
  local tag = id .. '-' .. n
  local r = routingOf(q)
  if string.byte(raw, 1) == 123 and string.byte(raw, -1) == 125 or string.find(raw, '^%s*{') and string.find(raw, '}%s*$') then
    entries[#entries + 1] = tag
    entries[#entries + 1] = '[' .. raw .. r
  else -- not a JSON object: kept as a JSON string, so that `unacked` stays readable by everyone
    entries[#entries + 1] = tag
    entries[#entries + 1] = '[' .. pystr(raw) .. r
  end
  scores[#scores + 1] = now
  scores[#scores + 1] = tag
  if holder ~= '' then holders[#holders + 1] = tag holders[#holders + 1] = holder end
  if nq > 1 then qs[n] = q end
  out[n + 1] = raw
end

-- One queue: a count at a time from each priority list, sized by the bytes taken so far; what a
-- count took beyond the byte limit goes back to the list's tail, in its order.
local function takeCounted()
  for s = 0, nsteps - 1 do
    local key = KEYS[5 + s]
    while n < max and bytes < maxBytes do
      local want = max - n
      -- The first alone: its size tells how many more fit (a count beyond the limit is copied twice).
      if n == 0 then want = 1 elseif bytes > 0 then want = math.min(want, math.floor((maxBytes - bytes) * n / bytes) + 1) end
      local got = redis.pcall('RPOP', key, want)
      -- Redis < 6.2 has no count: the loop below takes them. After a first count, an error is the
      -- list's (not a list): what was taken is recorded, and the loop raises it on the next fetch.
      if type(got) == 'table' and got.err then return n > 0 end
      if not got then break end
      for i = 1, #got do
        if bytes >= maxBytes then
          local back = {}
          for j = #got, i, -1 do back[#back + 1] = got[j] end
          redis.call('RPUSH', key, unpack(back))
          return true
        end
        take(got[i], 1)
      end
      if #got < want then break end
    end
  end
  return true
end

local counted = nq == 1 and takeCounted()
if not counted then
  local order, empty = {}, {}
  for q = 1, nq do order[q] = q end
  while n < max and bytes < maxBytes do
    local raw, qi
    for s = 0, nsteps - 1 do
      for pos = 1, nq do
        local key = KEYS[5 + s * nq + order[pos] - 1]
        if not empty[key] then
          raw = redis.call('RPOP', key)
          if raw then qi = pos break end
          empty[key] = true -- nobody else runs during the script: it stays empty
        end
      end
      if raw then break end
    end
    if not raw then break end
    local q = order[qi]
    take(raw, q)
    if rotate then
      table.remove(order, qi)
      order[nq] = q
    end
  end
end

out[1] = ((bytes >= maxBytes and n < max) and '1:' or '0:') .. table.concat(qs, ',')
if n > 0 then
  redis.call('HSET', KEYS[1], unpack(entries))
  redis.call('ZADD', KEYS[2], unpack(scores))
  if #holders > 0 then redis.call('HSET', KEYS[4], unpack(holders)) end
end
-- Written even when nothing was taken: the GET above armed key tracking on it (wakeup.ts), which
-- only a write of it ends.
redis.call('SET', KEYS[3], n .. ' ' .. out[1], 'EX', 60)
-- The lists are empty (nothing was left behind for a limit): read them last, so that a consumer
-- tracking its reads (wakeup.ts) is told of the next push into them, and of nothing before it.
if n < max and bytes < maxBytes then redis.call('EXISTS', unpack(KEYS, 5)) end
return out
