import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cyclesOf, folderGraph, importsOf } from '../helpers/import-graph.ts';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

describe('the import graph of src/', () => {
  const graph = folderGraph(src);

  it('has no cycle between folders', () => {
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('app/ imports neither canvas/ nor worker/ (they extend it through its hooks and signals)', () => {
    const app = [...(graph.get('app') ?? [])];
    expect(app.length).toBeGreaterThan(0);
    expect(app).not.toContain('canvas');
    expect(app).not.toContain('worker');
  });

  it('finds every kind of import, and the cycles they make', () => {
    const text = [
      "import a from './a.ts';",
      "import type { B } from '../b/b.ts';",
      "export { c } from './c.ts';",
      "const d = await import('./d.ts');",
      "import './e.ts';",
    ].join('\n');
    expect(importsOf(text)).toEqual(['./a.ts', '../b/b.ts', './c.ts', './d.ts', './e.ts']);
    const g = new Map([
      ['app', new Set(['canvas', 'protocol'])],
      ['canvas', new Set(['worker'])],
      ['worker', new Set(['app'])],
      ['protocol', new Set<string>()],
    ]);
    expect(cyclesOf(g)).toEqual([['app', 'canvas', 'worker']]);
  });
});
