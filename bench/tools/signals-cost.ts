/**
 * What the signals cost a task run when nobody is connected, and with a receiver on each task
 * signal: `node --import tsx bench/tools/signals-cost.ts [--base <other checkout>/src] [--n N] [--rounds R]`.
 * Runs tasks eagerly (the worker's trace without a broker) and times them; with `--base`, the same
 * loop runs against another checkout's sources (e.g. one without signals) in alternate rounds,
 * in child processes so both see the same warm-up.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const n = Number(opt('--n', '20000'));
const rounds = Number(opt('--rounds', '5'));
const here = path.dirname(fileURLToPath(import.meta.url));
const own = path.resolve(here, '../../src');

if (args[0] === '--child') {
  const [, src, mode] = args;
  const { Celery, ...lib } = (await import(path.join(src!, 'index.ts'))) as typeof import('../../src/index.ts');
  const app = new Celery('bench', { broker: 'memory://signals-cost' });
  const add = app.task('bench.add', (x: number, y: number) => x + y);
  if (mode === 'receivers') {
    const noop = () => undefined;
    lib.signals.taskPrerun.connect(noop);
    lib.signals.taskPostrun.connect(noop);
    lib.signals.taskSuccess.connect(noop);
  }
  for (let i = 0; i < 2000; i++) await add.apply([i, 1]); // warm-up
  // CPU time rather than wall time: the machine may be shared.
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await add.apply([i, 1]);
  const used = process.cpuUsage(t0);
  const ns = ((used.user + used.system) * 1000) / n;
  process.stdout.write(String(ns));
  process.exit(0);
}

if (args[0] === '--check') {
  // The check each fire site makes before building its arguments, alone.
  const { signals } = await import('../../src/index.ts');
  const m = 50_000_000;
  let hits = 0;
  const t0 = process.cpuUsage();
  for (let i = 0; i < m; i++) if (signals.taskPrerun.connected) hits++;
  const used = process.cpuUsage(t0);
  console.log(`one unconnected signal check: ${(((used.user + used.system) * 1000) / m).toFixed(2)} ns CPU (${hits} hits)`);
  process.exit(0);
}

const runOnce = (src: string, mode: string): number =>
  Number(execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', src, mode, '--n', String(n)], { encoding: 'utf8' }));
const base = args.includes('--base') ? path.resolve(opt('--base', '')) : undefined;
const series: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  const runs: [string, string, string][] = [['no receivers', own, 'none'], ['a receiver on prerun, postrun, success', own, 'receivers']];
  if (base) runs.unshift(['base (' + base + ')', base, 'none']);
  for (const [label, src, mode] of runs) (series[label] ??= []).push(runOnce(src, mode));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [label, xs] of Object.entries(series)) console.log(`${label.padEnd(50)} ${(median(xs) / 1000).toFixed(2)} µs CPU per eager task run (median of ${xs.length})`);
