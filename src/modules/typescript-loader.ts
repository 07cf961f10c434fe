/**
 * TypeScript task modules: celeriac's build runs as plain JavaScript, and loads the tsx loader
 * only when -A names a TypeScript file. tsx is an optional peer dependency: a project with only
 * JavaScript task modules never installs it.
 */
import { createRequire } from 'node:module';
import { ImproperlyConfigured } from '../errors.ts';

const LOADED = Symbol.for('celeriac.typescriptLoader');

/** This file runs as TypeScript (celeriac's sources, under tsx or a test runner): a loader is active. */
const fromSources = import.meta.url.endsWith('.ts');

export function isTypeScriptFile(file: string): boolean {
  return /\.[cm]?ts$/.test(file) && !file.endsWith('.d.ts');
}

/** Register tsx (for import and require) before a TypeScript module is imported; once per process. */
export async function ensureTypeScriptLoader(file: string): Promise<void> {
  const g = globalThis as Record<symbol, unknown>;
  if (!isTypeScriptFile(file) || fromSources || g[LOADED]) return;
  let esm: { register(): unknown };
  let cjs: { register(): unknown };
  try {
    esm = await import('tsx/esm/api');
    cjs = await import('tsx/cjs/api');
  } catch (cause) {
    const code = (cause as { code?: unknown } | null)?.code;
    if (code !== 'ERR_MODULE_NOT_FOUND') throw cause;
    throw new ImproperlyConfigured(
      `${file} is TypeScript and no TypeScript loader is installed: run \`npm install --save-dev tsx\` (or compile it and give -A the .js file).`,
      { cause },
    );
  }
  // tsx's require hook compiles any ES module it loads into a CommonJS copy, and a CommonJS task
  // module's require('celeriac') would then get a second set of celeriac's classes. Requiring
  // celeriac's entry points first, with Node's own require(esm), caches the copy this process
  // already runs: the hooked require finds them in the cache.
  const require = createRequire(import.meta.url);
  for (const entry of ['celeriac', 'celeriac/testing']) require(entry);
  esm.register();
  cjs.register();
  g[LOADED] = true;
}
