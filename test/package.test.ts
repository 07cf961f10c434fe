/**
 * The npm package as a user gets it: `npm pack`, installed once into a folder whose node_modules
 * serves several fresh projects (ESM and CommonJS, TypeScript and JavaScript; Node resolves up
 * the tree). Each project type-checks against the published declarations with the repo's tsc
 * (strict, skipLibCheck off) and runs tasks end to end on the embedded SQLite default: a worker
 * started with `npx celeriac -A <module> worker`, a client script, the results.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { projectRoot } from './integration/helpers.ts';
import { spawnLogged } from './redis/helpers.ts';

const run = promisify(execFile);
const TSC = path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
const TSX_VERSION = (JSON.parse(fs.readFileSync(path.join(projectRoot, 'node_modules', 'tsx', 'package.json'), 'utf8')) as { version: string }).version;

let dir: string;
let bare: string;
let tarball: string;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-package-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: projectRoot, maxBuffer: 16 << 20 });
  tarball = path.join(dir, (JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string }[])[0]!.filename);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumers', private: true }));
  // Install scripts are skipped and better-sqlite3's binary is taken from this checkout (same
  // version, same Node): compiling it from source takes minutes on a busy 2-core machine, and is
  // better-sqlite3's business, not the package's. celeriac itself has no install script (asserted below).
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball, `tsx@${TSX_VERSION}`], { cwd: dir, maxBuffer: 16 << 20 });
  const sqlite = (p: string) => path.join(p, 'node_modules', 'better-sqlite3');
  expect(readJson(path.join(sqlite(dir), 'package.json')).version).toBe(readJson(path.join(sqlite(projectRoot), 'package.json')).version);
  fs.cpSync(path.join(sqlite(projectRoot), 'build'), path.join(sqlite(dir), 'build'), { recursive: true });
  for (const [name, files] of Object.entries(PROJECTS)) {
    const p = path.join(dir, name);
    fs.mkdirSync(p);
    // Each project sees the shared install as its own, as after `npm install` in it.
    fs.symlinkSync(path.join(dir, 'node_modules'), path.join(p, 'node_modules'), 'dir');
    for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(p, file), typeof text === 'string' ? text : JSON.stringify(text, null, 2));
  }
}, 400_000);

afterAll(() => {
  for (const w of workers) {
    try {
      process.kill(-w.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const d of [dir, bare]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
}

it('the tarball holds the build and its declarations, no sources, tests or tooling, and no install script', async () => {
  const { stdout } = await run('tar', ['tzf', tarball]);
  const files = stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
  expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'bin/celeriac.js', 'dist/index.js', 'dist/index.d.ts', 'dist/testing.js', 'dist/testing.d.ts', 'dist/cli/main.js']));
  expect(files.filter((f) => /^(src|test|bench|\.ci|examples|scripts)\/|^tsconfig|^vitest/.test(f))).toEqual([]);
  const pkg = readJson(path.join(dir, 'node_modules', 'celeriac', 'package.json'));
  const scripts = Object.keys((pkg.scripts ?? {}) as object);
  expect(scripts.filter((s) => ['preinstall', 'install', 'postinstall', 'prepare'].includes(s))).toEqual([]);
  expect(Object.keys(pkg.dependencies as object)).not.toContain('tsx');
});

const TASKS_BODY = `
export const app = new Celery('consumer');   // the embedded default, ./celeriac.db
export const add = app.task('consumer.add', (x: number, y: number) => x + y);
// Classified by the worker with instanceof: proves the task module and the CLI share one celeriac.
export const fail = app.task('consumer.fail', () => {
  throw new ImproperlyConfigured('raised by the task module');
});
`;

const CLIENT_BODY = `
  // What other layers add to the app and its tasks is there, in the types and at run time.
  if (typeof add.s(3).delay !== 'function' || typeof app.control.ping !== 'function') throw new Error('canvas or control not loaded');
  const sum = await (await add.delay(2, 3)).get({ timeout: 30 });
  let excModule: string | null = null;
  try {
    await (await fail.delay()).get({ timeout: 30 });
  } catch (err) {
    if (err instanceof TaskError) excModule = err.excModule;
  }
  console.log(JSON.stringify({ sum, excModule }));
  await app.close();
`;

const strict = { strict: true, skipLibCheck: false, noEmit: true };
/** The TypeScript bodies as JavaScript, with JSDoc types for checkJs. */
const untyped = (ts: string) => ts
  .replace('(x: number, y: number)', '(/** @type {number} */ x, /** @type {number} */ y)')
  .replace('let excModule: string | null', '/** @type {string | null} */ let excModule');

/** name → files; each runs `-A ./<tasks>` and its client, TypeScript ones with `node --import tsx`. */
const PROJECTS: Record<string, Record<string, string | object>> = {
  // An ES-module package with a stock `tsc --init` tsconfig (TypeScript 5.9), lib check on.
  'esm-ts': {
    'package.json': { name: 'esm-ts', type: 'module' },
    'tsconfig.json': {
      compilerOptions: {
        module: 'nodenext', target: 'esnext', types: [], sourceMap: true, declaration: true, declarationMap: true,
        noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, strict: true, jsx: 'react-jsx',
        verbatimModuleSyntax: true, isolatedModules: true, noUncheckedSideEffectImports: true, moduleDetection: 'force',
        skipLibCheck: false, noEmit: true,
      },
    },
    'tasks.ts': `import { Celery, ImproperlyConfigured } from 'celeriac';\n${TASKS_BODY}`,
    'client.ts': `import { TaskError } from 'celeriac';\nimport { add, app, fail } from './tasks.js';\n${CLIENT_BODY}`,
  },
  // `npm init -y`: a CommonJS package; TypeScript with node16 resolution.
  'cjs-ts': {
    'package.json': { name: 'cjs-ts', version: '1.0.0', main: 'index.js' },
    'tsconfig.json': { compilerOptions: { ...strict, module: 'node16', target: 'es2022', types: ['node'] } },
    'tasks.ts': `import { Celery, ImproperlyConfigured } from 'celeriac';\n${TASKS_BODY}`,
    'client.ts': `import { TaskError } from 'celeriac';\nimport { add, app, fail } from './tasks';\n\nasync function main() {${CLIENT_BODY}}\nvoid main();\n`,
  },
  'bundler-ts': {
    'package.json': { name: 'bundler-ts', type: 'module' },
    'tsconfig.json': { compilerOptions: { ...strict, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', types: ['node'] } },
    'tasks.ts': `import { Celery, ImproperlyConfigured } from 'celeriac';\n${TASKS_BODY}`,
    'client.ts': `import { TaskError } from 'celeriac';\nimport { add, app, fail } from './tasks';\n${CLIENT_BODY}`,
  },
  // Plain JavaScript, checked with checkJs so that CommonJS users get the types too.
  'cjs-js': {
    'package.json': { name: 'cjs-js', version: '1.0.0' },
    'tsconfig.json': { compilerOptions: { ...strict, allowJs: true, checkJs: true, module: 'node16', target: 'es2022', types: ['node'] } },
    'tasks.js': `const { Celery, ImproperlyConfigured } = require('celeriac');\n${untyped(TASKS_BODY).replace(/export const (\w+)/g, 'const $1')}\nmodule.exports = { app, add, fail };\n`,
    'client.js': `const { TaskError } = require('celeriac');\nconst { add, app, fail } = require('./tasks.js');\n\nasync function main() {${untyped(CLIENT_BODY)}}\nvoid main();\n`,
  },
  'esm-js': {
    'package.json': { name: 'esm-js', type: 'module' },
    'tsconfig.json': { compilerOptions: { ...strict, allowJs: true, checkJs: true, module: 'nodenext', target: 'es2022', types: ['node'] } },
    'tasks.js': `import { Celery, ImproperlyConfigured } from 'celeriac';\n${untyped(TASKS_BODY)}`,
    'client.js': `import { TaskError } from 'celeriac';\nimport { add, app, fail } from './tasks.js';\n${untyped(CLIENT_BODY)}`,
  },
};

async function startWorker(cwd: string, module: string): Promise<ChildProcess> {
  // Its own process group: npx runs the command in a child process.
  const w = spawnLogged('npx', ['--no', '--', 'celeriac', '-A', module, 'worker', '-c', '2', '-l', 'INFO'], { cwd, group: true });
  workers.push(w.child);
  await w.waitFor(/ ready\./, 60_000);
  return w.child;
}

async function stop(w: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => w.once('exit', resolve));
  process.kill(-w.pid!, 'SIGTERM');
  await exited;
}

it('each project type-checks against the published declarations', async () => {
  // In parallel: tsc takes a while, and the projects are independent.
  const tsc = async (name: string) => {
    const res = await run(process.execPath, [TSC, '-p', '.'], { cwd: path.join(dir, name) }).catch((e: { stdout: string }) => e);
    return [name, res.stdout] as const;
  };
  const names = Object.keys(PROJECTS);
  expect(Object.fromEntries(await Promise.all(names.map(tsc)))).toEqual(Object.fromEntries(names.map((n) => [n, ''])));
}, 400_000);

it.each(Object.keys(PROJECTS))('%s: runs tasks on a worker started with `npx celeriac -A`, sent by a client script', async (name) => {
  const cwd = path.join(dir, name);
  const typescript = name.endsWith('-ts');
  const w = await startWorker(cwd, typescript ? './tasks.ts' : './tasks.js');
  try {
    const client = typescript ? ['--import', 'tsx', 'client.ts'] : ['client.js'];
    const { stdout } = await run(process.execPath, client, { cwd });
    expect(JSON.parse(stdout.trim())).toEqual({ sum: 5, excModule: 'celery.exceptions' });
  } finally {
    await stop(w);
  }
}, 90_000);

it('without tsx, a TypeScript task module fails with one line that says what to install', async () => {
  // A project without the optional peer: celeriac copied (Node resolves a symlink to its real
  // place, where tsx is), its dependencies linked from the shared install.
  bare = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-no-tsx-'));
  const modules = path.join(bare, 'node_modules');
  fs.mkdirSync(modules);
  const shared = path.join(dir, 'node_modules');
  for (const entry of fs.readdirSync(shared)) {
    if (entry === 'tsx' || entry === '.bin' || entry.startsWith('.')) continue;
    if (entry === 'celeriac') fs.cpSync(path.join(shared, entry), path.join(modules, entry), { recursive: true });
    else fs.symlinkSync(path.join(shared, entry), path.join(modules, entry), 'dir');
  }
  fs.writeFileSync(path.join(bare, 'package.json'), JSON.stringify({ name: 'no-tsx', type: 'module' }));
  fs.writeFileSync(path.join(bare, 'tasks.ts'), `import { Celery } from 'celeriac';\nexport const app = new Celery('consumer');\n`);
  const bin = path.join(modules, 'celeriac', 'bin', 'celeriac.js');
  const res = await run(process.execPath, [bin, '-A', './tasks.ts', 'worker'], { cwd: bare }).then(() => null, (e: { code: number; stderr: string }) => e);
  expect(res?.code).toBe(2);
  expect(res?.stderr.trim().split('\n')).toEqual([expect.stringContaining('is TypeScript and no TypeScript loader is installed: run `npm install --save-dev tsx`')]);
}, 60_000);
