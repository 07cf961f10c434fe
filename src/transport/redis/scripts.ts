/**
 * The Lua scripts (./scripts/*.lua, read once at startup; each documents its KEYS, ARGV and
 * guarantee) as ioredis commands: EVALSHA, falling back to EVAL after a server restart.
 */
import fs from 'node:fs';
import type { Redis } from 'ioredis';

const source = (name: string): string => fs.readFileSync(new URL(`./scripts/${name}`, import.meta.url), 'utf8');
const SCRIPTS = { celeriacFetch: source('fetch.lua'), celeriacAck: source('ack.lua'), celeriacPush: source('push.lua'), celeriacMove: source('move.lua'), celeriacUnlock: source('unlock.lua') };

/** fetch.lua's reply: "<capped>:<queue indexes>", then the envelopes taken (null: acknowledged since, on a re-sent fetch). */
export type FetchReply = [string | Buffer, ...(string | Buffer | null)[]];

export interface ScriptedRedis extends Redis {
  /** fetch.lua: numKeys, unacked, unacked_index, record, ...lists, max, now, nqueues, rotate, fetch id, holder, max bytes, ...queues */
  celeriacFetch(numKeys: number, ...args: (string | number)[]): Promise<FetchReply>;
  /** fetch.lua with the tags and envelopes as bytes. */
  celeriacFetchBuffer(numKeys: number, ...args: (string | number)[]): Promise<FetchReply>;
  /** ack.lua: 3, unacked, unacked_index, holders, "1"|"0" (clear holders), ...tags; the entries removed */
  celeriacAck(numKeys: 3, ...args: string[]): Promise<number>;
  /** push.lua: numKeys, record, ...lists, ...counts per list, ...values */
  celeriacPush(numKeys: number, ...args: (string | Buffer)[]): Promise<number>;
  /** move.lua: numKeys, unacked, unacked_index, ...destinations, tag, expected, payload, RPUSH|LPUSH */
  celeriacMove(numKeys: number, ...args: string[]): Promise<number>;
  /** unlock.lua: 1, mutex key, token */
  celeriacUnlock(numKeys: 1, key: string, token: string): Promise<number>;
}

export function withScripts(client: Redis): ScriptedRedis {
  for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua });
  return client as ScriptedRedis;
}
