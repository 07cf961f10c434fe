import { maskUrl } from '../common/censor.ts';
import { ConfigurationError } from '../errors.ts';
import { AMQP_TRANSPORTS } from './amqp/index.ts';
import { createMemoryTransport } from './memory/index.ts';
import { REDIS_TRANSPORTS } from './redis/index.ts';
import { createSqliteTransport } from './sqlite/index.ts';
import type { Transport, TransportFactory, TransportOptions } from './types.ts';

/** URL scheme → broker. A new broker is one folder under src/transport plus one line here. */
export const TRANSPORTS: Readonly<Record<string, TransportFactory>> = {
  'memory:': createMemoryTransport,
  'sqlite:': createSqliteTransport,
  ...REDIS_TRANSPORTS,
  ...AMQP_TRANSPORTS,
};


export function createTransport(url: string, options: TransportOptions = {}): Transport {
  const parsed = parseServiceUrl(url, 'broker');
  const factory = TRANSPORTS[parsed.protocol];
  if (!factory) throw unknownScheme('broker', parsed.protocol, Object.keys(TRANSPORTS));
  return factory(parsed, options);
}

/** Shared with the result-backend registry. */
export function parseServiceUrl(url: string, what: string): URL {
  try {
    return new URL(url);
  } catch (err) {
    throw new ConfigurationError(`invalid ${what} URL ${JSON.stringify(maskPassword(url))}: expected e.g. sqlite://celeriac.db or memory://`, { cause: err });
  }
}

export function unknownScheme(what: string, protocol: string, supported: string[]): ConfigurationError {
  return new ConfigurationError(
    `unsupported ${what} URL scheme ${JSON.stringify(protocol.replace(/:$/, ''))}: ` +
      `supported are ${supported.map((s) => s + '//').join(', ')}`,
  );
}

/** Best effort for a string that may not even parse: the password masked (src/common/censor.ts). */
export function maskPassword(url: string): string {
  return maskUrl(url);
}
