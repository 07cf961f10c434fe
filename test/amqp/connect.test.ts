/**
 * A RabbitMQ broker that cannot be used at start: nothing listening, a refused login (guest with a
 * wrong password on the shared RabbitMQ, which only fails the login). The worker retries what may
 * pass with a line per attempt and stops with one line; a refused login and a client's call fail
 * at once with one line.
 */
import { describe, expect, it } from 'vitest';
import { Celery } from '../../src/index.ts';
import type { CeleryConfig } from '../../src/app/config.ts';
import { Worker } from '../../src/worker/worker.ts';
import type { Logger } from '../../src/worker/log.ts';
import { sparePort } from './helpers.ts';

async function attempt(broker: string, config: CeleryConfig = {}): Promise<{ worker: string; client: string; log: string[] }> {
  const lines: string[] = [];
  const at = (level: string) => (msg: string) => void lines.push(`${level} ${msg}`);
  const logger = { level: 'INFO', debug: at('DEBUG'), info: at('INFO'), warning: at('WARNING'), error: at('ERROR'), critical: at('CRITICAL') } as unknown as Logger;
  const options = { logger: { warning: logger.warning, info: logger.info } };
  const app = new Celery('connect', { broker, brokerTransportOptions: options, ...config });
  const client = new Celery('connect-client', { broker, brokerTransportOptions: options, ...config });
  try {
    const worker = await new Worker(app, { logger, withoutMingle: true, withoutGossip: true, withoutHeartbeat: true }).start().then(
      () => 'started',
      (err: Error) => err.message,
    );
    const sent = await client.sendTask('tasks.add', [1, 2]).then(() => 'sent', (err: Error) => err.message);
    return { worker, client: sent, log: lines };
  } finally {
    await app.close();
    await client.close();
  }
}

describe('AMQP broker connection at start', () => {
  it('nothing listening: the worker retries with a line per attempt, then gives up with one line; a call fails with one line', async () => {
    const port = await sparePort();
    const url = `amqp://guest:**@127.0.0.1:${port}//`;
    const { worker, client, log } = await attempt(`amqp://guest:guest@127.0.0.1:${port}//`, { brokerConnectionMaxRetries: 1 });
    expect(worker).toBe(`Cannot connect to ${url}: connect ECONNREFUSED 127.0.0.1:${port} (gave up after 1 retry, brokerConnectionMaxRetries)`);
    expect(log.filter((l) => l.startsWith('ERROR'))).toEqual([`ERROR consumer: Cannot connect to ${url}: connect ECONNREFUSED 127.0.0.1:${port}. Trying again in 2.00 seconds... (1/1)`]);
    expect(client).toBe(`Cannot connect to ${url}: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('a refused login fails at once with one line, not retried, the password masked', async () => {
    const { worker, client, log } = await attempt('amqp://guest:wrongpass@127.0.0.1:5672//');
    expect(worker).toMatch(/^Cannot connect to amqp:\/\/guest:\*\*@127\.0\.0\.1:5672\/\/: authentication failed \(.*ACCESS.REFUSED.*\); check the user name and password in the URL$/);
    expect(client).toBe(worker);
    expect(log.join('\n')).not.toMatch(/Trying again|wrongpass/);
  });
});
