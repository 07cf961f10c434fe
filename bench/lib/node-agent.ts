/** Start the Node client agent (bench/agents/client.ts, bundled) of one client library. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundled } from './build.ts';
import { Agent } from './rpc.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function startNodeAgent(name: string, kind: 'celeriac' | 'bullmq', env: Record<string, string>): Promise<Agent> {
  const agent = new Agent(name, process.execPath, [bundled('client'), kind], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  await agent.ready;
  return agent;
}

/** Wait until the execution counter passes `target` (the worker ran a warm-up task). */
export async function waitExecuted(executed: () => Promise<number>, target: number, timeoutMs: number, check: () => void): Promise<void> {
  const until = performance.now() + timeoutMs;
  while ((await executed()) < target) {
    check();
    if (performance.now() > until) throw new Error(`no task executed within ${timeoutMs / 1000} s of starting the worker`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
