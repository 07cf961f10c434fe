import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Debian Python that has Celery 5.2 (not whatever `python3` is on PATH). */
export const PYTHON = '/usr/bin/python3';

/**
 * Start `python -m celery … worker …`; `child` is set at once (so a test can always kill it), and
 * `ready` resolves when the worker logs "ready." or rejects with its output if it exits first.
 */
export function spawnCeleryWorker(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; onOutput?: (chunk: string) => void },
): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(PYTHON, ['-m', 'celery', ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      opts.onOutput?.(text);
      if (/ ready\./.test(output)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`python worker exited (${code}):\n${output}`)));
  });
  return { child, ready };
}

/** SIGTERM (warm shutdown), then SIGKILL if it is still running after 10 s. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Send `count` tasks named `task` to `queue` from a Python client (app `<module>.app` in `dir`); resolves with their ids. */
export function sendFromPython(dir: string, module: string, task: string, count: number, queue: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'py', 'bulk_send.py');
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, module, task, String(count), queue], { cwd: dir, env: { ...process.env, ...env, PYTHONPATH: dir }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`bulk_send.py failed: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as string[]),
    );
  });
}
