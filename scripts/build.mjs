// `npm run build`: celeriac as JavaScript in dist/ (run on install by `prepare`). The CLI runs from
// it when the task module is JavaScript too, so that such a worker needs no TypeScript loader.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// Files the code reads at run time, next to the modules that read them.
fs.cpSync(path.join(root, 'src', 'transport', 'redis', 'scripts'), path.join(dist, 'transport', 'redis', 'scripts'), { recursive: true });
fs.writeFileSync(path.join(dist, '.built'), new Date().toISOString() + '\n');
