/** The cluster suite (remote control, revokes, mingle, gossip, events, elections) on the embedded SQLite broker, a file per app. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { createTestApp } from '../src/testing.ts';
import { clusterSuite } from './helpers/cluster-suite.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-cluster-sqlite-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;

clusterSuite('SQLite broker', (main, config) => {
  const url = `sqlite:///${path.join(dir, `${main}-${seq++}.db`)}`;
  return createTestApp(main, { broker: url, backend: url, ...config });
});
