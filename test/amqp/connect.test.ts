/**
 * A RabbitMQ broker that cannot be used at start: nothing listening, a refused login (guest with a
 * wrong password on the shared RabbitMQ, which only fails the login). The worker retries what may
 * pass with a line per attempt and stops with one line; a refused login and a client's call fail
 * at once with one line.
 */
import { describe, expect, it } from 'vitest';
import type { CeleryConfig } from '../../src/app/config.ts';
import { closedPort, connectAttempt } from '../helpers/connect-attempt.ts';

const attempt = (broker: string, config: CeleryConfig = {}) => connectAttempt(broker, config);

describe('AMQP broker connection at start', () => {
  it('nothing listening: the worker retries with a line per attempt, then gives up with one line; a call fails with one line', async () => {
    const port = await closedPort();
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
