// How bin/celeriac.js chooses between celeriac's build and its sources (plain JavaScript, no imports
// of celeriac itself, so that it runs before any loader is registered).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The --app value of the command line (-A x, -Ax, --app x, --app=x), else $CELERY_APP, else $CELERIAC_APP. */
export function appSpec(args, env) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') break;
    if (a === '-A' || a === '--app') return args[i + 1];
    if (a.startsWith('--app=')) return a.slice('--app='.length);
    if (a.startsWith('-A') && a.length > 2) return a.slice(2);
  }
  return env.CELERY_APP || env.CELERIAC_APP || undefined;
}

/** A file path to a JavaScript module, with or without `:attribute`. */
export function isJavaScriptModule(spec) {
  return /\.(m|c)?js(:[\w$.]+)?$/.test(spec);
}

/** A checkout with celeriac's TypeScript sources (the npm package ships only dist/). */
export function hasSources() {
  return fs.existsSync(path.join(root, 'src', 'cli', 'main.ts'));
}

/** dist/ was built after the last change to src/. */
export function buildIsFresh() {
  let built;
  try {
    built = fs.statSync(path.join(root, 'dist', '.built')).mtimeMs;
  } catch {
    return false;
  }
  const newer = (dir) => fs.readdirSync(dir, { withFileTypes: true }).some((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? newer(p) : fs.statSync(p).mtimeMs > built;
  });
  try {
    return !newer(path.join(root, 'src'));
  } catch {
    return false;
  }
}
