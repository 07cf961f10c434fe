import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CELERIAC_APP, isCeleriacApp } from '../src/app/brand.ts';
import { findApp, resolveAppName } from '../src/cli/find-app.ts';
import { ImproperlyConfigured } from '../src/errors.ts';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'apps');
const cwd = (name: string): string => path.join(FIXTURES, name);
const mainOf = (app: unknown): unknown => (app as { main?: unknown }).main;

async function failure(value: string, dir: string): Promise<ImproperlyConfigured> {
  const err: unknown = await findApp(value, { cwd: cwd(dir) }).then(
    () => { throw new Error(`findApp(${value}) should have failed`); },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImproperlyConfigured);
  return err as ImproperlyConfigured;
}

describe('isCeleriacApp', () => {
  it('recognises the brand only', () => {
    expect(isCeleriacApp({ [CELERIAC_APP]: true })).toBe(true);
    expect(isCeleriacApp({ [Symbol.for('celeriac.app')]: true })).toBe(true);
    expect(isCeleriacApp({ main: 'x' })).toBe(false);
    expect(isCeleriacApp(null)).toBe(false);
    expect(isCeleriacApp('app')).toBe(false);
  });
});

describe('findApp: -A proj searches in the documented order', () => {
  it.each([
    ['step1-app', 'step1', 'proj', 'app'],
    ['step2-celery', 'step2', 'proj', 'celery'],
    ['step3-any', 'step3', 'proj', 'worker'], // before proj.celery, unlike Celery 5.2's code
    ['step3-default', 'step3-default', 'proj', 'default'],
    ['step4-sub-app', 'step4', 'proj.celery', 'app'],
    ['step5-sub-celery', 'step5', 'proj.celery', 'celery'],
    ['step6-sub-any', 'step6', 'proj.celery', 'default'],
  ])('%s', async (dir, main, modulePath, attribute) => {
    const found = await findApp('proj', { cwd: cwd(dir) });
    expect(mainOf(found.app)).toBe(main);
    expect(found).toMatchObject({ modulePath, attribute });
    expect(path.isAbsolute(found.file)).toBe(true);
  });

  it('lists every place tried when nothing matches', async () => {
    const err = await failure('proj', 'none');
    const msg = err.message;
    expect(msg).toContain(`cwd: ${cwd('none')}`);
    for (const place of ['proj:app', 'proj:celery', 'proj.celery:app', 'proj.celery:celery']) {
      expect(msg).toContain(`${place} (`);
    }
    expect(msg).toContain('none among config, helper');
    expect(msg).toMatch(/proj\.celery:celery .*exported, but a string, not a celeriac app/);
    expect(msg).toContain('none among celery');
    expect(msg).toContain('-A module:attribute');
  });

  it('does not look for a celery submodule next to a single-file module', async () => {
    const err = await failure('single', 'none');
    expect(err.message).toContain('module single.celery: not looked for, single is a single file');
  });
});

describe('findApp: module:attribute', () => {
  it('dotted module path becomes folders', async () => {
    const found = await findApp('proj.tasks:app', { cwd: cwd('dotted') });
    expect(mainOf(found.app)).toBe('dotted');
    expect(found.file).toBe(path.join(cwd('dotted'), 'proj', 'tasks.ts'));
  });

  it('takes the named export even when others would win a search', async () => {
    const found = await findApp('proj:aaa', { cwd: cwd('step1-app') });
    expect(found).toMatchObject({ modulePath: 'proj', attribute: 'aaa' });
    expect(mainOf(found.app)).toBe('step1-aaa');
  });

  it('resolves a folder to its index', async () => {
    const found = await findApp('proj:celery', { cwd: cwd('step2-celery') });
    expect(found.file).toBe(path.join(cwd('step2-celery'), 'proj', 'index.ts'));
  });

  it('missing attribute lists the module exports', async () => {
    const err = await failure('proj.tasks:nope', 'dotted');
    expect(err.message).toContain('has no export "nope"; its exports are: add, app, notApp');
  });

  it('attribute must be a celeriac app (Celery would accept anything)', async () => {
    const err = await failure('proj.tasks:notApp', 'dotted');
    expect(err.message).toContain('proj.tasks:notApp');
    expect(err.message).toContain('not a celeriac app');
  });

  it('missing module names the candidates and the cwd', async () => {
    const err = await failure('nowhere.tasks:app', 'dotted');
    expect(err.message).toContain(`cwd: ${cwd('dotted')}`);
    const base = path.join(cwd('dotted'), 'nowhere', 'tasks');
    expect(err.message).toContain(`${base}.{ts,js,mjs,cjs,mts,cts} and ${base}/index.{ts,js,mjs,cjs,mts,cts}`);
  });
});

describe('findApp: symbol_by_name fallback (no colon)', () => {
  it('proj.tasks.app is module proj.tasks, attribute app', async () => {
    const found = await findApp('proj.tasks.app', { cwd: cwd('dotted') });
    expect(found).toMatchObject({ modulePath: 'proj.tasks', attribute: 'app' });
  });

  it('a module of that name wins over the attribute', async () => {
    const found = await findApp('proj.sub.app', { cwd: cwd('dotted') });
    expect(found).toMatchObject({ modulePath: 'proj.sub.app', attribute: 'celery' });
  });

  it('reports both the module and the attribute tried', async () => {
    const err = await failure('proj.tasks.nope', 'dotted');
    expect(err.message).toContain(`module proj.tasks.nope: not found, looked for ${path.join(cwd('dotted'), 'proj', 'tasks', 'nope')}.{ts,`);
    expect(err.message).toContain('has no export "nope"');
  });
});

describe('findApp: file paths', () => {
  it.each([
    './src/worker.ts:app', './src/worker.ts', 'src/worker', './src/worker:app',
  ])('%s', async (value) => {
    const found = await findApp(value, { cwd: cwd('dotted') });
    expect(mainOf(found.app)).toBe('path-form');
    expect(found.file).toBe(path.join(cwd('dotted'), 'src', 'worker.ts'));
  });

  it('absolute path', async () => {
    const file = path.join(cwd('dotted'), 'src', 'worker.ts');
    expect(mainOf((await findApp(`${file}:app`)).app)).toBe('path-form');
  });

  it('a folder path searches its celery submodule', async () => {
    const found = await findApp('./src/pkg', { cwd: cwd('dotted') });
    expect(mainOf(found.app)).toBe('path-package');
    expect(found.file).toBe(path.join(cwd('dotted'), 'src', 'pkg', 'celery.ts'));
  });
});

describe('findApp: module kinds', () => {
  it.each([
    ['esm.js:app', 'js'], ['./esm.mjs', 'mjs'], ['./common.cjs:app', 'cjs'], ['typed', 'ts'],
  ])('%s', async (value, main) => {
    expect(mainOf((await findApp(value, { cwd: cwd('modules') })).app)).toBe(main);
  });
});

describe('findApp: import errors propagate', () => {
  it('wraps an error thrown while importing, with the original stack', async () => {
    const err = await failure('throws:app', 'broken');
    expect(err.message).toContain('Error while importing module throws');
    expect(err.message).toContain('boom from throws.ts');
    expect((err.cause as Error).message).toBe('boom from throws.ts');
    expect(err.stack).toContain('Caused by: Error: boom from throws.ts');
  });

  it('also when searching', async () => {
    const err = await failure('throws', 'broken');
    expect(err.message).toContain('boom from throws.ts');
  });

  it('a missing dependency is an import error, not "module not found"', async () => {
    const err = await failure('./bad-import.js', 'broken');
    expect(err.message).toContain('Error while importing module ./bad-import.js');
    expect(err.message).not.toContain('Cannot find module ./bad-import.js');
    expect(err.cause).toBeDefined();
  });
});

describe('resolveAppName', () => {
  it('prefers the CLI value, then CELERY_APP, then CELERIAC_APP', () => {
    const env = { CELERY_APP: 'from.celery', CELERIAC_APP: 'from.celeriac' };
    expect(resolveAppName({ cliValue: 'cli:app', env })).toBe('cli:app');
    expect(resolveAppName({ env })).toBe('from.celery');
    expect(resolveAppName({ env: { CELERIAC_APP: 'from.celeriac' } })).toBe('from.celeriac');
    expect(resolveAppName({ cliValue: '', env: { CELERY_APP: '' , CELERIAC_APP: 'c' } })).toBe('c');
    expect(resolveAppName({ env: {} })).toBeUndefined();
  });
});

it('a missing explicit file names just that file', async () => {
  const err = await failure('./src/gone.ts:app', 'dotted');
  expect(err.message).toContain(`looked for ${path.join(cwd('dotted'), 'src', 'gone.ts')}.`);
});
