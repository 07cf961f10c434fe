/**
 * A consumer killed with SIGKILL at any instant loses nothing: fetching and recording in
 * `unacked` are one script, so every message is always either in a queue list or in `unacked`
 * (kombu's BRPOP-then-record loses the message in between). A visibility restore then brings
 * all of them back.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { fromEnvelope } from '../../src/protocol/envelope.ts';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { parseUnackedEntry } from '../../src/transport/redis/envelope-edit.ts';
import { RedisTransport } from '../../src/transport/redis/index.ts';
import { deleteByPrefix, REDIS_HOST, redisClient, runPrefix, TRANSPORT_DB } from './helpers.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const prefix = runPrefix('atomicity');
const url = `redis://${REDIS_HOST}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(prefix)}`;
const raw = redisClient(TRANSPORT_DB);
afterAll(async () => {
  raw.disconnect();
  await deleteByPrefix(TRANSPORT_DB, prefix);
});

/** Start a fetching child that kills itself with SIGKILL mid-fetch once it holds `killAfter` messages. */
function fetchAndKill(killAfter: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'fetch-loop.ts'), url, 'q', String(killAfter)], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${signal ?? _code}`))));
  });
}

/** Task ids found in the queue lists and in `unacked`. */
async function census(): Promise<{ listed: string[]; unacked: string[]; indexed: number }> {
  const lists = await Promise.all(['q', 'q\x06\x163'].map((k) => raw.lrange(prefix + k, 0, -1)));
  const listed = lists.flat().map((e) => String(fromEnvelope(e).message.headers.id));
  const entries = await raw.hvals(`${prefix}unacked`);
  const unacked = entries.map((e) => String(fromEnvelope(parseUnackedEntry(e)!.message).message.headers.id));
  return { listed, unacked, indexed: await raw.zcard(`${prefix}unacked_index`) };
}

it('loses no message when consumers are killed mid-fetch', async () => {
  const N = 12_000;
  const producer = new RedisTransport(new URL(url));
  const sent = Array.from({ length: N }, (_, i) => `m${i}`);
  for (let i = 0; i < N; i += 1000) {
    await Promise.all(sent.slice(i, i + 1000).map((id, j) => producer.publish('q', buildTaskMessage({ id, name: 't', args: [], origin: 'o', replyTo: 'r', priority: j % 2 ? 4 : 0 }))));
  }
  await Promise.all([500, 2000, 4000].map(fetchAndKill)); // three consumers at once, killed at different moments

  const { listed, unacked, indexed } = await census();
  expect(unacked.length).toBeGreaterThan(0); // the children did take messages
  expect(listed.length).toBeGreaterThan(0); // and were killed mid-stream
  expect(indexed).toBe(unacked.length);
  expect([...listed, ...unacked].sort()).toEqual([...sent].sort());

  // Everything unacknowledged comes back with a visibility restore.
  const restorer = new RedisTransport(new URL(`${url}&visibility_timeout=0`));
  expect(await restorer.restoreVisible()).toBe(unacked.length);
  const after = await census();
  expect(after.unacked).toEqual([]);
  expect(after.listed.sort()).toEqual([...sent].sort());
  await Promise.all([producer.close(), restorer.close()]);
}, 60_000);
