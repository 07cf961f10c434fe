/**
 * A task module in JavaScript (what a project's own build produces) runs on celeriac's build
 * (dist/), with no TypeScript loader in the worker; a TypeScript one runs on celeriac's sources.
 * Either way `import 'celeriac'` in the task module gives the same copy of celeriac the command
 * line runs, so there is one set of classes per process.
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { projectRoot } from './helpers.ts';
import { spawnLogged } from '../redis/helpers.ts';

const BIN = path.join(projectRoot, 'bin', 'celeriac.js');
const run = promisify(execFile);
let dir: string;
const workers: ChildProcess[] = [];

const MODULE = (broker: string) => `
import { Celery } from 'celeriac';
export const app = new Celery('compiled', { broker: ${JSON.stringify(broker)} });
app.task('compiled.where', () => import.meta.resolve('celeriac'));
`;

beforeAll(() => {
  // As after `npm install`: the build is up to date.
  execFileSync(process.execPath, [path.join(projectRoot, 'scripts', 'build.mjs')], { stdio: 'ignore' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-compiled-'));
  // The project depends on celeriac, as a user's project would.
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(projectRoot, path.join(dir, 'node_modules', 'celeriac'), 'dir');
  fs.writeFileSync(path.join(dir, 'tasks.mjs'), MODULE(`sqlite:///${path.join(dir, 'js.db')}`));
  fs.writeFileSync(path.join(dir, 'tasks.mts'), MODULE(`sqlite:///${path.join(dir, 'ts.db')}`));
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startWorker(app: string): Promise<number> {
  const w = spawnLogged(process.execPath, [BIN, '-A', app, 'worker', '-l', 'INFO'], { cwd: dir });
  workers.push(w.child);
  await w.waitFor(/ ready\./, 30_000);
  return w.child.pid!;
}

async function callWhere(app: string): Promise<string> {
  const { stdout: id } = await run(process.execPath, [BIN, '-A', app, 'call', 'compiled.where'], { cwd: dir });
  const { stdout } = await run(process.execPath, [BIN, '-A', app, 'result', id.trim(), '--timeout', '20'], { cwd: dir });
  return stdout.trim();
}

const children = (pid: number) => fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();

it('a JavaScript task module runs on the build, with no loader process beside the worker', async () => {
  const pid = await startWorker('./tasks.mjs:app');
  expect(await callWhere('./tasks.mjs:app')).toBe(JSON.stringify(new URL('dist/index.js', `file://${projectRoot}/`).href));
  expect(children(pid)).toBe('');
}, 60_000);

it('a TypeScript task module runs on the sources, and imports them as celeriac too', async () => {
  await startWorker('./tasks.mts:app');
  expect(await callWhere('./tasks.mts:app')).toBe(JSON.stringify(new URL('src/index.ts', `file://${projectRoot}/`).href));
}, 60_000);
