/** Where an error thrown while importing a module comes from: `path:line:column`, for a one-line message. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ErrorLocation {
  /** `test/app.ts:2:9` (relative to the working directory when inside it). */
  where: string;
  /** The error's own message, on one line (esbuild's "Transform failed" wrapper removed). */
  message: string;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const OWN = ['bin', 'src', 'dist'].map((d) => path.join(ROOT, d) + path.sep);

export function locateError(err: unknown, file: string, cwd = process.cwd()): ErrorLocation {
  const e = err as { message?: unknown; stack?: unknown; name?: unknown } | null;
  const message = String(e?.message ?? err);
  const show = (p: string, line: string, col: string | undefined) => {
    const abs = p.startsWith('file://') ? fileURLToPath(p) : p;
    const rel = path.relative(cwd, abs);
    return `${rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs}:${line}${col ? ':' + col : ''}`;
  };
  // tsx (esbuild) compile errors: "Transform failed with 1 error:\n/path/x.ts:2:10: ERROR: Unexpected ";""
  const esbuild = /^(.+?):(\d+):(\d+): ERROR: (.*)$/m.exec(message);
  if (esbuild) return { where: show(esbuild[1]!, esbuild[2]!, String(Number(esbuild[3]) + 1)), message: esbuild[4]! }; // esbuild counts columns from 0
  const firstLine = message.split('\n')[0]!;
  // The first stack frame in the user's code (not Node's internals, a package or celeriac's loader).
  for (const m of String(e?.stack ?? '').matchAll(/^\s+at (?:.*? \()?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/gm)) {
    const p = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (!p.includes(`${path.sep}node_modules${path.sep}`) && !OWN.some((dir) => p.startsWith(dir))) return { where: show(p, m[2]!, m[3]!), message: firstLine };
  }
  // Node keeps the position of a JavaScript syntax error out of the error: ask `node --check`.
  if (e?.name === 'SyntaxError' && /\.(m|c)?js$/.test(file)) {
    const out = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 }).stderr ?? '';
    const lines = out.split('\n');
    const head = /^(.+):(\d+)$/.exec(lines[0] ?? '');
    const caret = lines[2]?.indexOf('^') ?? -1;
    if (head) return { where: show(head[1]!, head[2]!, caret >= 0 ? String(caret + 1) : undefined), message: firstLine };
  }
  return { where: show(file, '1', undefined).replace(/:1$/, ''), message: firstLine };
}
