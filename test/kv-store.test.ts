import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createKeyValueStore } from '../src/backend/registry.ts';
import type { KeyValueStore } from '../src/backend/types.ts';
import { ConfigurationError } from '../src/errors.ts';
import { createTransport } from '../src/transport/registry.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-kv-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const kinds = [
  { name: 'memory', newUrl: () => `memory://kv-${seq++}` },
  { name: 'sqlite', newUrl: () => `sqlite:///${path.join(dir, `kv-${seq++}.db`)}` },
];

describe.each(kinds)('$name key-value store', (kind) => {
  const open: KeyValueStore[] = [];
  const make = (url = kind.newUrl()): KeyValueStore => {
    const s = createKeyValueStore(url);
    open.push(s);
    return s;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it('gets, sets, overwrites and deletes', async () => {
    const s = make();
    expect(await s.get('k')).toBeNull();
    await s.set('k', 'v1', null);
    expect(await s.get('k')).toBe('v1');
    await s.set('k', 'v2', 60);
    expect(await s.get('k')).toBe('v2');
    await s.delete('k');
    await s.delete('missing');
    expect(await s.get('k')).toBeNull();
  });

  it('keeps the order of calls made in one tick: a read or delete sees the writes before it', async () => {
    const s = make();
    const writes = [s.set('a', '1', null), s.set('b', '2', null)];
    const read = s.mget(['a', 'b']);
    const overwritten = s.set('a', '3', null);
    const deleted = s.delete('b');
    await Promise.all([...writes, overwritten, deleted]);
    expect(await read).toEqual(['1', '2']);
    expect(await s.mget(['a', 'b'])).toEqual(['3', null]);
  });

  it('treats expired keys as missing', async () => {
    const s = make();
    await s.set('short', 'x', 0.15);
    await s.set('long', 'y', 60);
    expect(await s.get('short')).toBe('x');
    await sleep(250);
    expect(await s.get('short')).toBeNull();
    expect(await s.mget(['short', 'long'])).toEqual([null, 'y']);
  });

  it('mget keeps the order of the keys, with null for missing ones', async () => {
    const s = make();
    await s.set('a', '1', null);
    await s.set('c', '3', null);
    expect(await s.mget(['c', 'b', 'a', 'c'])).toEqual(['3', null, '1', '3']);
    expect(await s.mget([])).toEqual([]);
  });

  it('incr counts from 0, atomically, and honours ttl', async () => {
    const s = make();
    expect(await s.incr('n', 1, null)).toBe(1);
    expect(await s.incr('n', 5, null)).toBe(6);
    expect(await s.get('n')).toBe('6');
    const results = await Promise.all(Array.from({ length: 200 }, () => s.incr('n', 1, null)));
    expect(new Set(results).size).toBe(200);
    expect(await s.get('n')).toBe('206');
    expect(await s.incr('t', 2, 0.1)).toBe(2);
    await sleep(200);
    expect(await s.incr('t', 2, null)).toBe(2); // expired counts as missing
  });

  it('shares data between two stores of one URL', async () => {
    const url = kind.newUrl();
    const [a, b] = [make(url), make(url)];
    await a.set('shared', 'yes', null);
    expect(await b.get('shared')).toBe('yes');
  });

  it('waitForChange wakes when another store changes the key', async () => {
    const url = kind.newUrl();
    const [a, b] = [make(url), make(url)];
    await a.set('state', 'PENDING', null);
    const start = Date.now();
    setTimeout(() => void b.set('state', 'SUCCESS', null), 100);
    await a.waitForChange('state', 10_000);
    expect(Date.now() - start).toBeLessThan(2000);
    expect(await a.get('state')).toBe('SUCCESS');
  });

  it('waitForChange resolves on timeout and on abort, never rejecting', async () => {
    const s = make();
    let start = Date.now();
    await s.waitForChange('quiet', 150);
    expect(Date.now() - start).toBeGreaterThanOrEqual(140);
    const ac = new AbortController();
    start = Date.now();
    setTimeout(() => ac.abort(), 50);
    await s.waitForChange('quiet', 10_000, ac.signal);
    expect(Date.now() - start).toBeLessThan(2000);
    await s.waitForChange('quiet', 10_000, ac.signal);
  });
});

describe('sqlite key-value store across processes', () => {
  it('incr is atomic across two processes', async () => {
    const url = `sqlite:///${path.join(dir, 'incr.db')}`;
    const fixture = path.join(root, 'test/fixtures/sqlite-consumer.ts');
    const run = () =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', fixture, 'incr', url, 'counter', '300'], { cwd: root, stdio: 'inherit' });
        p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      });
    await Promise.all([run(), run()]);
    const s = createKeyValueStore(url);
    expect(await s.get('counter')).toBe('600');
    await s.close();
  }, 30_000);

  it('can share a file with the broker', async () => {
    const url = `sqlite:///${path.join(dir, 'both.db')}`;
    const t = createTransport(url);
    const s = createKeyValueStore(url);
    await s.set('k', 'v', null);
    await t.declareQueue('q');
    expect(await t.size('q')).toBe(0);
    expect(await s.get('k')).toBe('v');
    await Promise.all([t.close(), s.close()]);
  });
});

describe('key-value store registry', () => {
  it('rejects unknown schemes', () => {
    expect(() => createKeyValueStore('rpc://')).toThrow(ConfigurationError);
    expect(() => createKeyValueStore('rpc://')).toThrow(/"rpc".*memory:\/\/, sqlite:\/\//);
  });
});
