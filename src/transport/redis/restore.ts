/**
 * The visibility-timeout restore, exactly as kombu's `QoS.restore_visible`: under the
 * `unacked_mutex` lock (SET NX PX, released by compare-and-delete), every entry of
 * `unacked_index` older than the timeout goes back to the front of its queue (RPUSH), marked
 * redelivered. Python workers restore celeriac's deliveries and celeriac restores theirs.
 */
import { randomUUID } from 'node:crypto';
import { dumps } from '../../protocol/json.ts';
import { markRedelivered, parseUnackedEntry } from './envelope-edit.ts';
import type { KombuKeys } from './keys.ts';
import type { ScriptedRedis } from './scripts.ts';

export interface RestoreOptions {
  visibilityTimeoutS: number;
  mutexExpireS: number;
  /** kombu's unacked_restore_limit: most entries per pass (none by default). */
  limit?: number;
}

/** One pass; resolves with the number of messages restored (0 when another consumer holds the lock). */
export async function restoreVisible(r: ScriptedRedis, keys: KombuKeys, opts: RestoreOptions): Promise<number> {
  const token = randomUUID();
  if ((await r.set(keys.mutex, token, 'PX', Math.round(opts.mutexExpireS * 1000), 'NX')) !== 'OK') return 0;
  try {
    const ceil = Date.now() / 1000 - opts.visibilityTimeoutS;
    const tags = opts.limit
      ? await r.zrevrangebyscore(keys.unackedIndex, ceil, 0, 'LIMIT', 0, opts.limit)
      : await r.zrevrangebyscore(keys.unackedIndex, ceil, 0);
    let restored = 0;
    for (const tag of tags) restored += await restoreTag(r, keys, tag);
    return restored;
  } finally {
    await r.celeriacUnlock(1, keys.mutex, token).catch(() => 0); // expired meanwhile: nothing to release
  }
}

/** kombu's `restore_by_tag`, made a compare-and-set on the entry read (kombu: WATCH unacked). */
async function restoreTag(r: ScriptedRedis, keys: KombuKeys, tag: string): Promise<number> {
  const entry = await r.hget(keys.unacked, tag);
  if (entry === null) {
    await r.zrem(keys.unackedIndex, tag);
    return 0;
  }
  const parsed = parseUnackedEntry(entry);
  const queues = parsed ? await lookup(r, keys, parsed.exchange, parsed.routingKey) : [];
  if (!parsed || queues.length === 0) {
    // kombu would log and drop it; keep it where someone can look at it.
    const record = dumps({ reason: 'unacked entry with no destination queue', delivery_tag: tag, time: Date.now() / 1000, entry });
    return r.celeriacMove(3, keys.unacked, keys.unackedIndex, keys.dead('unacked'), tag, entry, record, 'LPUSH');
  }
  const lists = queues.map((q) => keys.list(q));
  return r.celeriacMove(2 + lists.length, keys.unacked, keys.unackedIndex, ...lists, tag, entry, markRedelivered(parsed.message), 'RPUSH');
}

/**
 * kombu's `_lookup`: the anonymous exchange routes to the queue named by the routing key; another
 * exchange through its binding set (treated as direct, as kombu does for an exchange it did not
 * declare). Where kombu would drop the message (no binding), it goes to the routing key's queue.
 */
export async function lookup(r: ScriptedRedis, keys: KombuKeys, exchange: string, routingKey: string): Promise<string[]> {
  if (!exchange) return routingKey ? [routingKey] : [];
  const members = await r.smembers(keys.binding(exchange));
  const queues = members.map((m) => m.split(keys.sep)).filter(([rk]) => rk === routingKey).map((parts) => parts[2] ?? '').filter(Boolean);
  if (queues.length > 0) return [...new Set(queues)];
  return routingKey ? [routingKey] : [];
}

/**
 * celeriac's restore of a worker reported lost (workerRestoreLost): the messages recorded as held
 * by `holder` and still unacknowledged go back to the front of their queues now, instead of after
 * the visibility timeout. One worker does it (a lock per lost worker); a message that has been
 * settled, or restored and fetched again (which records its new holder), is left alone.
 */
export async function restoreLost(r: ScriptedRedis, keys: KombuKeys, holder: string): Promise<number> {
  if ((await r.set(keys.restoreLostLock(holder), randomUUID(), 'EX', 60, 'NX')) !== 'OK') return 0;
  const held = await r.hgetall(keys.holders());
  let restored = 0;
  for (const [tag, who] of Object.entries(held)) {
    if (who !== holder) continue;
    if ((await r.hget(keys.holders(), tag)) === holder) restored += await restoreTag(r, keys, tag);
    await r.hdel(keys.holders(), tag);
  }
  return restored;
}
