/**
 * `--app` / `-A` resolution: Celery's find_app (celery/app/utils.py) adapted to Node modules.
 *
 *   -A proj.tasks:app        module proj/tasks.* (or proj/tasks/index.*), export `app`
 *   -A ./src/tasks.ts:app    the same with a file path (relative to cwd, or absolute)
 *   -A proj                  search proj, then proj.celery (see search())
 *   -A proj.tasks.app        module proj/tasks/app.* if it exists, else proj.tasks:app
 */
import path from 'node:path';
import { isCeleriacApp } from '../app/brand.ts';
import { ImproperlyConfigured } from '../errors.ts';
import { importModule, isPathLike, MODULE_EXTENSIONS, resolveModule, type ResolvedModule } from '../modules/load-module.ts';

export interface FoundApp {
  app: unknown;
  /** The module as named on the command line (or derived, e.g. `proj.celery`). */
  modulePath: string;
  attribute: string;
  /** Absolute path of the file the app was imported from. */
  file: string;
}

const FIX = 'Fix: name the app explicitly with -A module:attribute (e.g. -A proj.tasks:app or ' +
  '-A ./src/tasks.ts:app), or export it as `app` from the module given to -A.';

/** The app name from the CLI, else $CELERY_APP, else $CELERIAC_APP; empty values count as unset. */
export function resolveAppName(opts: { cliValue?: string | undefined; env?: NodeJS.ProcessEnv } = {}): string | undefined {
  const env = opts.env ?? process.env;
  for (const v of [opts.cliValue, env['CELERY_APP'], env['CELERIAC_APP']]) {
    if (v !== undefined && v.trim() !== '') return v.trim();
  }
  return undefined;
}

export async function findApp(value: string, opts: { cwd?: string } = {}): Promise<FoundApp> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const v = value.trim();
  if (v === '') throw new ImproperlyConfigured(`Empty --app value. ${FIX}`);
  // Last colon, like kombu's symbol_by_name; skip a Windows drive letter (C:\...).
  const colon = v.lastIndexOf(':');
  if (colon > (/^[A-Za-z]:[\\/]/.test(v) ? 1 : -1)) {
    const spec = v.slice(0, colon);
    const attribute = v.slice(colon + 1);
    if (spec === '' || attribute === '') throw new ImproperlyConfigured(`Invalid --app value ${JSON.stringify(v)}. ${FIX}`);
    const mod = resolveModule(spec, cwd);
    if (mod.file === undefined) throw notFound(spec, mod, cwd);
    return fromAttribute(spec, mod.file, attribute, []);
  }

  const mod = resolveModule(v, cwd);
  if (mod.file !== undefined) return search(v, mod.file, mod.isPackage, cwd);

  // symbol_by_name fallback: `proj.tasks.app` is no module, so try module `proj.tasks`, attribute `app`.
  const dot = v.lastIndexOf('.');
  if (!isPathLike(v) && dot > 0) {
    const parentSpec = v.slice(0, dot);
    const parent = resolveModule(parentSpec, cwd);
    if (parent.file !== undefined) {
      return fromAttribute(parentSpec, parent.file, v.slice(dot + 1), [`module ${v}: ${notFoundLine(mod)}`]);
    }
    throw new ImproperlyConfigured(
      `Cannot find module ${v} nor ${parentSpec} (cwd: ${cwd}).\n` +
      `Tried:\n  - module ${v}: ${notFoundLine(mod)}\n  - module ${parentSpec}: ${notFoundLine(parent)}\n${FIX}`,
    );
  }
  throw notFound(v, mod, cwd);
}

/**
 * `module:attribute`: the export must exist and be a celeriac app. Celery does not type-check
 * here (any object is taken as the app); we do, so a wrong export fails now, not later.
 */
async function fromAttribute(spec: string, file: string, attribute: string, tried: string[]): Promise<FoundApp> {
  const ns = await importModule(spec, file);
  const where = tried.length ? `\nTried:\n${tried.map((t) => `  - ${t}`).join('\n')}` : '';
  if (!(attribute in ns)) {
    throw new ImproperlyConfigured(
      `Module ${spec} (${file}) has no export ${JSON.stringify(attribute)}; its exports are: ${listExports(ns)}.${where}\n${FIX}`,
    );
  }
  const app = ns[attribute];
  if (!isCeleriacApp(app)) {
    throw new ImproperlyConfigured(
      `${spec}:${attribute} (${file}) is ${describe(app)}, not a celeriac app (new Celery(...)).${where}\n${FIX}`,
    );
  }
  return { app, modulePath: spec, attribute, file };
}

/**
 * `-A proj` with no attribute, in the documented order: in proj (1) `app`, (2) `celery`,
 * (3) any app export; then, if proj is a folder with an index, in proj.celery (4) `app`,
 * (5) `celery`, (6) any app export. Celery 5.2's code tries the submodule before step 3,
 * unlike its docs; we follow the docs.
 */
async function search(spec: string, file: string, isPackage: boolean, cwd: string): Promise<FoundApp> {
  const tried: string[] = [];
  const found = scan(spec, file, await importModule(spec, file), tried);
  if (found) return found;

  // For a path, the submodule is the `celery` file next to the index.
  const subSpec = isPathLike(spec) ? path.join(path.dirname(file), 'celery') : `${spec}.celery`;
  if (isPackage) {
    const sub = resolveModule(subSpec, cwd);
    if (sub.file !== undefined) {
      const subFound = scan(subSpec, sub.file, await importModule(subSpec, sub.file), tried);
      if (subFound) return subFound;
    } else {
      tried.push(`module ${subSpec}: ${notFoundLine(sub)}`);
    }
  } else {
    tried.push(`module ${subSpec}: not looked for, ${spec} is a single file (${file}), not a folder with an index`);
  }
  throw new ImproperlyConfigured(
    `Cannot find a celeriac app in ${spec} (cwd: ${cwd}).\nTried:\n${tried.map((t) => `  - ${t}`).join('\n')}\n${FIX}`,
  );
}

function scan(spec: string, file: string, ns: Record<string, unknown>, tried: string[]): FoundApp | undefined {
  for (const attribute of ['app', 'celery']) {
    if (!(attribute in ns)) {
      tried.push(`${spec}:${attribute} (${file}): no such export`);
    } else if (isCeleriacApp(ns[attribute])) {
      return { app: ns[attribute], modulePath: spec, attribute, file };
    } else {
      tried.push(`${spec}:${attribute} (${file}): exported, but ${describe(ns[attribute])}, not a celeriac app`);
    }
  }
  // A module namespace lists exports sorted by name (source order is not observable in JS), so
  // "first" means first by name; `export default app` is the export named `default`. Sorting
  // here also makes test runners' module shims behave like Node.
  for (const attribute of Object.keys(ns).sort()) {
    if (isCeleriacApp(ns[attribute])) return { app: ns[attribute], modulePath: spec, attribute, file };
  }
  tried.push(`${spec} (${file}): any export that is a celeriac app: none among ${listExports(ns)}`);
  return undefined;
}

function notFound(spec: string, mod: ResolvedModule, cwd: string): ImproperlyConfigured {
  return new ImproperlyConfigured(`Cannot find module ${spec} (cwd: ${cwd}): ${notFoundLine(mod)}.\n${FIX}`);
}

function notFoundLine(mod: ResolvedModule): string {
  const { candidates } = mod;
  const exts = MODULE_EXTENSIONS.map((e) => e.slice(1)).join(',');
  const base = candidates[0]?.slice(0, -MODULE_EXTENSIONS[0].length);
  // The usual 12 candidates, shortened to <base>.{ts,...} and <base>/index.{ts,...}.
  const short = base !== undefined && candidates.length === 2 * MODULE_EXTENSIONS.length
    ? [`${base}.{${exts}}`, `${path.join(base, 'index')}.{${exts}}`]
    : candidates;
  return `not found, looked for ${short.join(' and ')}`;
}

function listExports(ns: Record<string, unknown>): string {
  const names = Object.keys(ns).sort();
  return names.length ? names.join(', ') : '(none)';
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
  return `a ${typeof v}`;
}
