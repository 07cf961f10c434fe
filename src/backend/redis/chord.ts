/**
 * Chord join on Redis exactly as Celery's RedisBackend does it (`on_chord_part_return`), so that
 * Python and celeriac workers can complete the same chord: per part one MULTI of ZADD
 * `celery-taskset-meta-<gid>.j` <group_index> "[1, tid, STATE, result]", ZCOUNT .j -inf +inf,
 * GET .t, GET .s, EXPIRE .j/.t/.s; the part whose ZCOUNT reaches size (.s) + extra (.t, INCRed by
 * `add_to_chord`) completes the chord, reads the parts (ZRANGE, score order) and DELs the keys.
 * With `result_chord_ordered: false` (a result backend transport option, as in Celery) `.j` is a
 * list instead: RPUSH/LLEN, and the body gets the results in completion order (LRANGE). Every
 * worker of a chord must use the same setting (Celery's too: the key's type differs).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { ChordPart, ChordProgress } from '../types.ts';

const keys = (groupId: string) => ['.j', '.t', '.s'].map((s) => `celery-taskset-meta-${groupId}${s}`) as [string, string, string];

export async function addChordPart(client: Redis, groupId: string, part: ChordPart, ttlSeconds: number | null, ordered = true): Promise<ChordProgress> {
  const [j, t, s] = keys(groupId);
  const multi = ordered ? client.multi().zadd(j, part.groupIndex ?? '+inf', part.member).zcount(j, '-inf', '+inf') : client.multi().rpush(j, part.member).llen(j);
  multi.get(t).get(s);
  if (ttlSeconds) for (const k of [j, t, s]) multi.expire(k, Math.max(1, Math.round(ttlSeconds)));
  const replies = await exec(multi);
  const size = replies[3] as string | null;
  return { count: Number(replies[1]), total: size === null ? null : Number(size) + Number((replies[2] as string | null) ?? 0) };
}

export async function chordParts(client: Redis, groupId: string, ordered = true): Promise<string[]> {
  const j = keys(groupId)[0];
  const [replies] = await exec(ordered ? client.multi().zrange(j, 0, -1) : client.multi().lrange(j, 0, -1));
  return replies as string[];
}

/** Celery's `add_to_chord`: `INCRBY .t 1` (redis-py's incr), no expiry (it gets one as parts come in). */
export async function addToChord(client: Redis, groupId: string): Promise<void> {
  await client.incrby(keys(groupId)[1], 1);
}

export async function deleteChord(client: Redis, groupId: string): Promise<void> {
  const [j, t, s] = keys(groupId);
  await exec(client.multi().del(j).del(t).del(s));
}

async function exec(multi: ChainableCommander): Promise<unknown[]> {
  const replies = (await multi.exec()) ?? [];
  const err = replies.find(([e]) => e)?.[0];
  if (err) throw err;
  return replies.map(([, v]) => v);
}
