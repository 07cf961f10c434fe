import { parseServiceUrl, unknownScheme } from '../transport/registry.ts';
import { createMemoryStore } from './memory/index.ts';
import { REDIS_STORES } from './redis/index.ts';
import { createSqliteStore } from './sqlite/index.ts';
import type { KeyValueStore, KeyValueStoreFactory, KeyValueStoreOptions } from './types.ts';

/** URL scheme → key-value result store. A new store is one folder under src/backend plus one line here. */
export const KEY_VALUE_STORES: Readonly<Record<string, KeyValueStoreFactory>> = {
  'memory:': createMemoryStore,
  'sqlite:': createSqliteStore,
  ...REDIS_STORES,
};

export function createKeyValueStore(url: string, options: KeyValueStoreOptions = {}): KeyValueStore {
  const parsed = parseServiceUrl(url, 'result backend');
  const factory = KEY_VALUE_STORES[parsed.protocol];
  if (!factory) throw unknownScheme('result backend', parsed.protocol, Object.keys(KEY_VALUE_STORES));
  return factory(parsed, options);
}
