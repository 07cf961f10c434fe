/**
 * `memory://[name]`: an in-process key-value result store. Stores opened with the same URL
 * host in one process share their data, so a client and a worker in one process see the
 * same results. Expired keys are dropped when read and by an occasional sweep.
 */
import { EventEmitter } from 'node:events';
import type { KeyValueStore, KeyValueStoreOptions } from '../types.ts';

interface Item {
  value: string;
  expiresAt: number | null;
}

class Space {
  readonly data = new Map<string, Item>();
  readonly changes = new EventEmitter().setMaxListeners(0);
  writes = 0;

  read(key: string): Item | undefined {
    const item = this.data.get(key);
    if (item && item.expiresAt !== null && item.expiresAt <= Date.now()) {
      this.data.delete(key);
      return undefined;
    }
    return item;
  }

  write(key: string, item: Item | undefined): void {
    if (item) this.data.set(key, item);
    else this.data.delete(key);
    this.changes.emit(key);
    if (++this.writes % 1000 === 0) for (const k of [...this.data.keys()]) this.read(k);
  }
}

const spaces = new Map<string, Space>();

export class MemoryStore implements KeyValueStore {
  readonly url: string;
  private readonly space: Space;

  constructor(url: URL, _options: KeyValueStoreOptions = {}) {
    this.url = `memory://${url.host}`;
    let space = spaces.get(url.host);
    if (!space) spaces.set(url.host, (space = new Space()));
    this.space = space;
  }

  async get(key: string): Promise<string | null> {
    return this.space.read(key)?.value ?? null;
  }

  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    return keys.map((k) => this.space.read(k)?.value ?? null);
  }

  async set(key: string, value: string, ttlSeconds: number | null): Promise<void> {
    this.space.write(key, { value, expiresAt: expiry(ttlSeconds) });
  }

  async delete(key: string): Promise<void> {
    this.space.write(key, undefined);
  }

  async incr(key: string, by: number, ttlSeconds: number | null): Promise<number> {
    const item = this.space.read(key);
    const n = (item ? Math.trunc(Number(item.value)) || 0 : 0) + by;
    this.space.write(key, { value: String(n), expiresAt: ttlSeconds === null ? item?.expiresAt ?? null : expiry(ttlSeconds) });
    return n;
  }

  waitForChange(key: string, timeoutMs: number, signal?: AbortSignal, lastSeen?: string | null): Promise<void> {
    const before = lastSeen === undefined ? (this.space.read(key)?.value ?? null) : lastSeen;
    return new Promise((resolve) => {
      if (signal?.aborted || (this.space.read(key)?.value ?? null) !== before) return resolve();
      const check = (): void => {
        if ((this.space.read(key)?.value ?? null) !== before) done();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.space.changes.off(key, check);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.space.changes.on(key, check);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {}
}

function expiry(ttlSeconds: number | null): number | null {
  return ttlSeconds === null ? null : Date.now() + ttlSeconds * 1000;
}

export function createMemoryStore(url: URL, options: KeyValueStoreOptions): KeyValueStore {
  return new MemoryStore(url, options);
}
