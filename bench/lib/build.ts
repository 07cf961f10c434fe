/**
 * The benchmark's Node processes run as built JavaScript, as a deployment would run them: celeriac
 * from its build (dist/, `npm run build`), and the task module, the client agent and the BullMQ
 * worker bundled here with their packages left as imports. No TypeScript loader runs in them
 * (it would cost each process ≈ 50 MB and some CPU).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const BUILD_DIR = path.join(ROOT, 'bench', '.build');
/** The celeriac workers' `-A`, relative to the project root. */
export const TASKS_MODULE = './bench/.build/tasks.mjs:app';

export async function buildNodeProcesses(): Promise<void> {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  await build({
    entryPoints: {
      tasks: path.join(ROOT, 'bench', 'tasks.ts'),
      client: path.join(ROOT, 'bench', 'agents', 'client.ts'),
      'bullmq-worker': path.join(ROOT, 'bench', 'agents', 'bullmq-worker.ts'),
    },
    outdir: BUILD_DIR,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
}

/** `node <bundle>` arguments for one of the bundled entry points. */
export function bundled(entry: 'client' | 'bullmq-worker'): string {
  return path.join(BUILD_DIR, `${entry}.mjs`);
}
