/**
 * A live consumer keeps the messages it holds from being restored (kombu's visibility timeout is
 * counted from the last refresh, not from delivery), so a task longer than the timeout runs once;
 * a consumer that dies stops refreshing and its messages come back after the timeout.
 * Shared Redis, run-unique key prefix, visibility_timeout of 1 s.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import type { RedisTransport } from '../../src/transport/redis/index.ts';
import { createTransport } from '../../src/transport/registry.ts';
import { deleteByPrefix, redisClient, runPrefix, TRANSPORT_DB } from './helpers.ts';

const prefix = runPrefix('visibility');
const url = `redis://127.0.0.1:6379/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(prefix)}&visibility_timeout=1`;
const raw = redisClient(TRANSPORT_DB);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterAll(async () => {
  await deleteByPrefix(TRANSPORT_DB, prefix);
  raw.disconnect();
});

describe('visibility of held messages on Redis', () => {
  it('a message held 3 s by a live consumer is not restored with a 1 s visibility timeout; once the consumer dies it is', async () => {
    const holder = createTransport(url) as RedisTransport;
    const other = createTransport(url) as RedisTransport;
    await holder.publish('long', buildTaskMessage({ id: 'long-1', name: 't.long', args: [], origin: 'test', replyTo: 'r' }));
    const [held] = await holder.fetch(['long'], 1, 1_000);
    expect(held?.message.headers.id).toBe('long-1');

    for (let i = 0; i < 6; i++) {
      await sleep(500);
      expect(await other.restoreVisible()).toBe(0);
    }
    expect(await raw.llen(`${prefix}long`)).toBe(0);

    holder.client.disconnect(); // as kill -9: nothing settles, nothing refreshes
    await sleep(1_600);
    expect(await other.restoreVisible()).toBe(1);
    const [again] = await other.fetch(['long'], 1, 1_000);
    expect(again?.message.headers.id).toBe('long-1');
    await again!.ack();
    await other.close();
    await holder.close();
  });
});
