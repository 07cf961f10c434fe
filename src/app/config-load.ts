/** The module side of configuration: config modules, autodiscovered task modules, and updating a live conf. */
import fs from 'node:fs';
import path from 'node:path';
import { ImproperlyConfigured } from '../errors.ts';
import { importModules, importSymbol } from '../modules/import-modules.ts';
import { isPathLike, resolveModule } from '../modules/load-module.ts';
import { celeryEnvOverrides, type ConfigFromObjectOptions, moduleAsObject, settingsFromObject } from './config-sources.ts';
import type { ResolvedConfig } from './config.ts';

export interface AutodiscoverOptions {
  /** The module looked for in each package (default `tasks`); null: import the packages themselves. */
  relatedName?: string | null;
  /** Import now (the returned promise settles when done) instead of when a worker starts. */
  force?: boolean;
}

/** `'proj.celeryconfig'` or `'./config.ts:settings'`: the module's exports (or that export) as settings. */
export async function configFromModule(spec: string, opts: ConfigFromObjectOptions): Promise<Partial<ResolvedConfig>> {
  const value = await importSymbol(spec);
  const colon = spec.lastIndexOf(':') > 1;
  if (value === null || typeof value !== 'object') {
    throw new ImproperlyConfigured(`configFromObject(${JSON.stringify(spec)}): expected an object of settings, got ${value === null ? 'null' : typeof value}`);
  }
  return settingsFromObject(colon ? (value as Record<string, unknown>) : moduleAsObject(value as Record<string, unknown>), opts);
}

/** Settings replace the app's; Celery's CELERY_BROKER_URL and CELERY_RESULT_BACKEND still win, as in Python. */
export function updateConf(conf: ResolvedConfig, settings: Partial<ResolvedConfig>): void {
  Object.assign(conf, settings, celeryEnvOverrides());
}

/** The related module of each package (Celery's `<package>.tasks`), as a module name or path. */
export function discoverTasks(packages: readonly string[], opts: AutodiscoverOptions): string[] {
  const related = opts.relatedName === undefined ? 'tasks' : opts.relatedName;
  return packages.map((p) => (related === null ? p : isPathLike(p) ? `${p.replace(/[\\/]$/, '')}/${related}` : `${p}.${related}`));
}

/**
 * Import the settings' modules (each must exist) and the discovered ones (skipped when absent,
 * as Celery, but the package itself must exist); `done` keeps each to one import.
 */
export async function importTaskModules(required: string[], discovered: string[], done: Set<string>, cwd = process.cwd()): Promise<void> {
  const todo = required.filter((m) => !done.has(m));
  await importModules(todo, cwd);
  for (const m of todo) done.add(m);
  for (const m of discovered) {
    if (done.has(m)) continue;
    if (resolveModule(m, cwd).file === undefined) {
      const pkg = isPathLike(m) ? path.dirname(m) : m.slice(0, m.lastIndexOf('.'));
      const dir = isPathLike(pkg) ? path.resolve(cwd, pkg) : path.resolve(cwd, ...pkg.split('.'));
      if (resolveModule(pkg, cwd).file === undefined && !fs.existsSync(dir)) {
        throw new ImproperlyConfigured(`autodiscoverTasks: no package ${pkg} (cwd: ${cwd}): looked for ${dir} and ${dir}.ts/.js`);
      }
    } else {
      await importModules([m], cwd);
    }
    done.add(m);
  }
}
