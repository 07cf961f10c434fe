import net from 'node:net';
import type { CeleryConfig } from '../../src/app/config.ts';
import { Celery } from '../../src/index.ts';
import type { Logger } from '../../src/common/log.ts';
import { Worker } from '../../src/worker/worker.ts';

/** A logger that keeps each line as `LEVEL message`. */
export function captureLog(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (msg: string) => void lines.push(`${level} ${msg}`);
  const logger = { level: 'INFO', debug: at('DEBUG'), info: at('INFO'), warning: at('WARNING'), error: at('ERROR'), critical: at('CRITICAL') } as unknown as Logger;
  return { logger, lines };
}

/** What a worker's start and a client's call on `broker` end with, and what the worker logged meanwhile. */
export async function connectAttempt(broker: string, config: CeleryConfig = {}, transportOptions: Record<string, unknown> = {}): Promise<{ worker: string; client: string; log: string[] }> {
  const { logger, lines } = captureLog();
  const options = { logger: { warning: logger.warning, info: logger.info }, ...transportOptions };
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

/**
 * A port nothing listens on, for "nothing listening" tests. Chosen by the kernel from its ephemeral
 * range, where no test starts a server: a spare port of the ranges private brokers use could be
 * taken by a test file running alongside while the attempt retries.
 */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
