import { ImproperlyConfigured } from '../errors.ts';
import { importModule, resolveModule } from './load-module.ts';

/**
 * Import modules by Celery's names (`proj.tasks`) or paths (`./src/tasks.ts`), relative to `cwd`,
 * in order; returns their namespaces. A module that is missing fails with the files looked for.
 */
export async function importModules(specs: readonly string[], cwd = process.cwd()): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const spec of specs) {
    const mod = resolveModule(spec, cwd);
    if (mod.file === undefined) {
      throw new ImproperlyConfigured(`Cannot find module ${spec} (cwd: ${cwd}): looked for ${mod.candidates.join(', ')}`);
    }
    out.push(await importModule(spec, mod.file));
  }
  return out;
}

/** The module of an optional `module:attribute` specifier, and the attribute's value (the whole namespace without one). */
export async function importSymbol(spec: string, cwd = process.cwd()): Promise<unknown> {
  const colon = spec.lastIndexOf(':');
  const hasAttr = colon > (/^[A-Za-z]:[\\/]/.test(spec) ? 1 : 0);
  const [ns] = await importModules([hasAttr ? spec.slice(0, colon) : spec], cwd);
  if (!hasAttr) return ns;
  const attr = spec.slice(colon + 1);
  if (!(attr in ns!)) throw new ImproperlyConfigured(`Module ${spec.slice(0, colon)} has no export ${JSON.stringify(attr)}; its exports are: ${Object.keys(ns!).sort().join(', ') || '(none)'}`);
  return ns![attr];
}
