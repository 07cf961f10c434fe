// `npm run build`: celeriac as JavaScript and declarations in dist/. Run by `prepack` (so `npm pack`
// and `npm publish` ship it) and by the repo's own tests that need it; never on a consumer's
// install. The CLI runs from it when the task module is JavaScript, with no TypeScript loader.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// tsc rewrites `./x.ts` to `./x.js` in the JavaScript but not in the declarations; a consumer's tsc
// would reject `.ts` specifiers there (TS5097), so point them at the .js/.d.ts pair.
for (const file of fs.readdirSync(dist, { recursive: true })) {
  if (!file.endsWith('.d.ts')) continue;
  const p = path.join(dist, file);
  const text = fs.readFileSync(p, 'utf8');
  let fixed = text.replace(/(from\s+|import\s*\(\s*|import\s+|declare module\s+)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g, '$1$2$3.js$2');
  // Node's types (Buffer, NodeJS.*) for consumers whose tsconfig lists no `types` (tsc --init's).
  if (file === 'index.d.ts' || file === 'testing.d.ts') fixed = '/// <reference types="node" />\n' + fixed;
  if (fixed !== text) fs.writeFileSync(p, fixed);
  // The same declarations as CommonJS (.d.cts, `require` condition): a CommonJS consumer with
  // `module: node16` may not require() what its tsc thinks is an ES module (TS1479), although
  // Node 20.19+ does it (require(esm)). Runtime code is the ES build for both.
  fs.writeFileSync(p.replace(/\.d\.ts$/, '.d.cts'), fixed.replace(/(from\s+|import\s*\(\s*|import\s+|declare module\s+)(['"])(\.{1,2}\/[^'"]*?)\.js\2/g, '$1$2$3.cjs$2'));
}
// Files the code reads at run time, next to the modules that read them.
fs.cpSync(path.join(root, 'src', 'transport', 'redis', 'scripts'), path.join(dist, 'transport', 'redis', 'scripts'), { recursive: true });
// The dashboard's page, served as it is (no bundling step: plain HTML, CSS and JavaScript).
fs.cpSync(path.join(root, 'src', 'dashboard', 'page'), path.join(dist, 'dashboard', 'page'), { recursive: true });
fs.writeFileSync(path.join(dist, '.built'), new Date().toISOString() + '\n');
