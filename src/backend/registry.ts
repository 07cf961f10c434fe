import { parseServiceUrl, unknownScheme } from '../transport/registry.ts';
import { KeyValueBackend } from './key-value-backend.ts';
import { createMemoryStore } from './memory/index.ts';
import { REDIS_STORES } from './redis/index.ts';
import type { ResultBackend } from './result-backend.ts';
import { RpcBackend, type RpcBackendOptions } from './rpc/index.ts';
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
  if (!factory) throw unknownScheme('result backend', parsed.protocol, [...Object.keys(KEY_VALUE_STORES), 'rpc:']);
  return factory(parsed, options);
}

/** The app's result backend: `rpc://` (results as messages over the broker), else a key-value store. */
export function createResultBackend(url: string, app: RpcBackendOptions, storeOptions: KeyValueStoreOptions = {}): ResultBackend {
  if (parseServiceUrl(url, 'result backend').protocol === 'rpc:') return new RpcBackend(app);
  return new KeyValueBackend(createKeyValueStore(url, storeOptions), app.expires);
}
