/**
 * Summarize V8 CPU profiles (written by `npm run bench -- --cpu-prof DIR`, or node --cpu-prof):
 * self time per function (file:line) and per file, heaviest first, across every profile given.
 *
 *   node --import tsx bench/tools/cpuprofile-summary.ts DIR|FILE... [--top 30] [--filter src/]
 * Folders are searched recursively.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const args = process.argv.slice(2);
let top = 30;
let filter = '';
const inputs: string[] = [];
while (args.length) {
  const a = args.shift()!;
  if (a === '--top') top = Number(args.shift());
  else if (a === '--filter') filter = args.shift() ?? '';
  else inputs.push(a);
}
const walk = (p: string): string[] =>
  fs.statSync(p).isDirectory() ? fs.readdirSync(p).flatMap((f) => walk(path.join(p, f))) : p.endsWith('.cpuprofile') ? [p] : [];
const files = inputs.flatMap(walk);
if (files.length === 0) {
  process.stderr.write('usage: cpuprofile-summary.ts DIR|FILE... [--top N] [--filter text]\n');
  process.exit(2);
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const short = (url: string) => {
  const p = url.replace(/^file:\/\//, '');
  return p.startsWith(root) ? path.relative(root, p) : p || '(native)';
};

const MAX_DELTA_US = 10_000;
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  // A gap far above the sampling interval is not CPU time: the drain SIGSTOPs the worker while it prefills.
  for (let i = 0; i < samples.length; i++) self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + Math.min(deltas[i] ?? 0, MAX_DELTA_US));
  for (const [id, us] of self) {
    const n = nodes.get(id)!;
    const f = n.callFrame;
    if (f.functionName === '(idle)') continue;
    total += us;
    const where = short(f.url);
    const key = `${f.functionName || '(anonymous)'}  ${where}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
    const fileKey = f.url ? where.replace(/^.*node_modules\//, 'node_modules/') : `(${f.functionName})`;
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
  }
}

const show = (title: string, m: Map<string, number>) => {
  process.stdout.write(`\n${title} (self time, ${files.length} profile(s), ${(total / 1e6).toFixed(2)} s busy, idle excluded)\n`);
  const rows = [...m].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, us] of rows) process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(6)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}\n`);
};
show('by function', byFn);
show('by file', byFile);
