/**
 * Keys recorded in a sorted set at the server's time, so a reader can ask for what is new since
 * its last read (the result backend's revoke marks, followed by workers). The server's clock,
 * not the writers', orders them: clients' clocks may disagree.
 */
import type { Redis } from 'ioredis';

/** How far back each read starts again, so a server clock stepped back by NTP loses nothing. */
const REREAD_MS = 5_000;

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS: key, index; ARGV: value, TTL seconds, member. */
const SET_INDEXED = `${NOW_MS}
local ttl = tonumber(ARGV[2]) * 1000
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - ttl))
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl)
return now`;

/** KEYS: index; ARGV: since ('' for none), max age ms, limit. Newest first. */
const INDEXED_SINCE = `${NOW_MS}
local min = now - tonumber(ARGV[2])
if ARGV[1] ~= '' then min = math.max(min, tonumber(ARGV[1])) end
return {now, redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', min, 'LIMIT', 0, tonumber(ARGV[3]))}`;

interface IndexingRedis extends Redis {
  celeriacSetIndexed(numKeys: number, ...args: string[]): Promise<number>;
  celeriacIndexedSince(numKeys: number, ...args: string[]): Promise<[number, string[]]>;
}

export function defineIndexCommands(client: Redis): void {
  client.defineCommand('celeriacSetIndexed', { lua: SET_INDEXED });
  client.defineCommand('celeriacIndexedSince', { lua: INDEXED_SINCE });
}

export async function setIndexed(client: Redis, key: string, value: string, ttlSeconds: number, index: string, member: string): Promise<void> {
  await (client as IndexingRedis).celeriacSetIndexed(2, key, index, value, String(Math.max(1, Math.round(ttlSeconds))), member);
}

export async function indexedSince(client: Redis, index: string, since: number | null, maxAgeMs: number, limit: number): Promise<{ members: string[]; next: number }> {
  const [now, members] = await (client as IndexingRedis).celeriacIndexedSince(1, index, since === null ? '' : String(since), String(Math.round(maxAgeMs)), String(limit));
  return { members, next: Number(now) - REREAD_MS };
}
