/**
 * Node's counterpart of Python's import system for --app: turn a module name
 * (`proj.tasks`) or a file path (`./src/tasks.ts`) into a file, and import it.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ImproperlyConfigured } from '../errors.ts';
import { locateError } from './error-location.ts';
import { ensureTypeScriptLoader } from './typescript-loader.ts';

/** Tried in this order, first as `<name><ext>`, then as `<name>/index<ext>`. */
export const MODULE_EXTENSIONS = ['.ts', '.js', '.mjs', '.cjs', '.mts', '.cts'] as const;

export interface ResolvedModule {
  /** The file found, or undefined when no candidate exists. */
  file: string | undefined;
  /** Every file looked for, in order (for error messages). */
  candidates: string[];
  /** True for a folder with an index file: the Python "package" that may hold a `celery` submodule. */
  isPackage: boolean;
}

/** A file path rather than a dotted module name: has a separator, starts with `.`, is absolute or has a module extension. */
export function isPathLike(spec: string): boolean {
  return spec.includes('/') || spec.includes('\\') || spec.startsWith('.') || path.isAbsolute(spec) ||
    MODULE_EXTENSIONS.some((ext) => spec.endsWith(ext));
}

export function resolveModule(spec: string, cwd: string): ResolvedModule {
  let base: string;
  if (isPathLike(spec)) {
    base = path.resolve(cwd, spec);
    // An explicit extension names exactly one file (a folder never ends in .ts in practice).
    if (MODULE_EXTENSIONS.some((ext) => base.endsWith(ext)) && isFile(base)) {
      return { file: base, candidates: [base], isPackage: isIndex(base) };
    }
  } else {
    if (spec.split('.').some((part) => part === '')) {
      throw new ImproperlyConfigured(`Invalid module name ${JSON.stringify(spec)}: empty part between dots.`);
    }
    base = path.resolve(cwd, ...spec.split('.'));
  }
  const files = MODULE_EXTENSIONS.map((ext) => base + ext);
  const indexes = MODULE_EXTENSIONS.map((ext) => path.join(base, 'index' + ext));
  const candidates = [...files, ...indexes];
  const file = candidates.find(isFile);
  return { file, candidates, isPackage: file !== undefined && indexes.includes(file) };
}

/**
 * Import a resolved file. Any failure here is a real error in (or below) the module, never
 * "module not found": we only import files that exist.
 */
export async function importModule(name: string, file: string): Promise<Record<string, unknown>> {
  await ensureTypeScriptLoader(file);
  try {
    return withCommonJsExports((await import(pathToFileURL(file).href)) as Record<string, unknown>);
  } catch (cause) {
    const hint = loadHint(cause);
    const { where, message } = locateError(cause, file);
    const err = new ImproperlyConfigured(`Error while importing module ${name}: ${message} (at ${where})${hint}`, { cause });
    // Keep the original stack visible where only err.stack is printed.
    if (cause instanceof Error && cause.stack) err.stack = `${err.stack}\nCaused by: ${cause.stack}`;
    throw err;
  }
}

/** What to change when a module cannot load for its module system, in one line. */
function loadHint(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code;
  const message = String((cause as Error | null)?.message ?? '');
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION') return ' (TypeScript modules need a loader: run `npm install --save-dev tsx` and start them with the celeriac command)';
  if (message.includes('Top-level await is currently not supported with the "cjs" output format')) {
    return ' (this TypeScript file is CommonJS, as its package.json has no "type": "module": add that, or rename it to .mts, to use top-level await)';
  }
  if (code === 'ERR_REQUIRE_ASYNC_MODULE') return ' (require() cannot load an ES module that uses top-level await: use `await import(...)` there, or make the requiring file an ES module)';
  if (code === 'ERR_REQUIRE_CYCLE_MODULE') return ' (a require() cycle through an ES module: make the requiring file an ES module, or load one side with `await import(...)`)';
  return '';
}

/**
 * A CommonJS module imported from ESM has `module.exports` as `default`, and named exports only
 * where Node's lexer spots them (not in compiled TypeScript); so its exports are read from there.
 */
function withCommonJsExports(ns: Record<string, unknown>): Record<string, unknown> {
  const exported = ns['default'];
  if (exported === null || typeof exported !== 'object' || Object.getPrototypeOf(exported) !== Object.prototype) return ns;
  if (!('module.exports' in ns) && !Object.keys(ns).every((k) => k === 'default' || k in exported)) return ns;
  return { ...(exported as Record<string, unknown>), ...ns };
}

function isFile(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;
}

function isIndex(file: string): boolean {
  return path.basename(file, path.extname(file)) === 'index';
}
