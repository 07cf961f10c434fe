/**
 * A message whose headers do not fit amqplib's 64 KB properties buffer (found by the chaos suite's
 * "huge argsrepr" messages): the publish fails with one clear line, and the channel's publisher
 * confirms stay in step, so the next publishes on it still resolve.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from './helpers.ts';

const vhost = runId('large-headers');
beforeAll(() => createVhosts([vhost]));
afterAll(() => deleteVhosts([vhost]));

it('refuses headers over 64 KB with a clear error, and later publishes are still confirmed', async () => {
  const t = createTransport(`${vhostUrl(vhost)}?publish_timeout=5`, {});
  try {
    const message = (id: string, argsrepr?: string) =>
      buildTaskMessage({ id, name: 'tasks.add', args: [1, 2], origin: 'test@host', replyTo: 'reply', headers: argsrepr ? { argsrepr } : {} });
    await t.publish('big', message('ok-0'));
    await expect(t.publish('big', message('huge', 'x'.repeat(100_000)))).rejects.toThrow(/headers of the message are too large for AMQP \(\d+ KB; the limit is 64 KB\)/);
    for (let i = 1; i <= 3; i++) await t.publish('big', message(`ok-${i}`));
    expect(await t.size('big')).toBe(4);
  } finally {
    await t.close();
  }
}, 30_000);
