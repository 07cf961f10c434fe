/**
 * The suite stands alone and shares the machine's servers politely: its fixtures are in the
 * repository, it uses only the Redis DBs of test/helpers/redis-db.ts, and it never flushes one.
 * (.ci/run checks, around a real run, that nothing is left behind.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir, projectRoot } from './helpers/fixtures.ts';

const testDir = path.join(projectRoot, 'test');

/** Test sources (TypeScript and the Python peers), wire captures excepted. */
function sources(dir = testDir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return full === path.join(testDir, 'fixtures', 'celery-wire') ? [] : sources(full);
    return /\.(ts|py)$/.test(e.name) ? [full] : [];
  });
}

const offending = (re: RegExp, except: string[] = []) =>
  sources()
    .filter((f) => !except.includes(path.relative(projectRoot, f)))
    .flatMap((f) => readFileSync(f, 'utf8').split('\n').map((line, i) => [`${path.relative(projectRoot, f)}:${i + 1}`, line] as const))
    .filter(([, line]) => re.test(line))
    .map(([where, line]) => `${where}: ${line.trim()}`);

describe('test suite hygiene', () => {
  it('reads the Celery wire captures from inside the repository', () => {
    if (process.env.CELERY_WIRE_FIXTURES) return; // an explicit override is the user's choice
    expect(path.relative(projectRoot, fixturesDir)).toBe(path.join('test', 'fixtures', 'celery-wire', 'fixtures'));
    expect(readdirSync(fixturesDir).filter((f) => f.endsWith('.json')).length).toBeGreaterThan(100);
  });

  it('never flushes a Redis database', () => {
    expect(offending(/flushdb|flushall/i, ['test/test-hygiene.test.ts'])).toEqual([]);
  });

  it('names the shared Redis server\'s databases only in test/helpers/redis-db.ts', () => {
    // `redis://127.0.0.1:6379/3` or `db: 3` on the shared server; URLs that only check parsing use DB 0.
    expect(offending(/127\.0\.0\.1:6379\/[1-9]|port: 6379, db: ?[1-9]|\bDB = \d/, ['test/test-hygiene.test.ts'])).toEqual([]);
  });
});
