/**
 * The worker's first connection to the broker, as Celery's consumer (`ensure_connected`):
 * with broker_connection_retry_on_startup (default: broker_connection_retry, true) each failed
 * attempt logs "consumer: Cannot connect to <url>: <reason>. Trying again in N seconds... (k/max)"
 * and waits 2, 4, 6 … 30 s; after broker_connection_max_retries (100; 0 or null: for ever) it gives
 * up with one line. What a retry cannot cure (a wrong password, a missing database) fails at once.
 */
import type { ResolvedConfig } from '../app/config.ts';
import { BrokerConnectionError } from '../transport/connect-error.ts';
import type { Transport } from '../transport/types.ts';

type Conf = Pick<ResolvedConfig, 'brokerConnectionTimeout' | 'brokerConnectionRetry' | 'brokerConnectionRetryOnStartup' | 'brokerConnectionMaxRetries'>;

export async function connectBroker(transport: Transport, conf: Conf, log: { error(msg: string): void }, signal?: AbortSignal): Promise<void> {
  if (!transport.connect) return;
  const retry = conf.brokerConnectionRetryOnStartup ?? conf.brokerConnectionRetry;
  const max = conf.brokerConnectionMaxRetries || Number.POSITIVE_INFINITY;
  for (let retries = 0; ; retries++) {
    try {
      await transport.connect(conf.brokerConnectionTimeout * 1000);
      return;
    } catch (err) {
      if (!(err instanceof BrokerConnectionError) || !err.retry || !retry || signal?.aborted) throw err;
      if (retries >= max) throw new BrokerConnectionError(err.url, `${err.reason} (gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'}, brokerConnectionMaxRetries)`, false);
      const interval = Math.min(2 + 2 * retries, 30);
      log.error(`consumer: Cannot connect to ${err.url}: ${err.reason}. Trying again in ${interval.toFixed(2)} seconds... (${retries + 1}/${max === Number.POSITIVE_INFINITY ? 'inf' : max})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval * 1000);
        signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  }
}
