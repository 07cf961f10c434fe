/**
 * Child processes of the benchmark: every one is tracked so that a failure, Ctrl-C or SIGTERM
 * still stops it (SIGCONT first: a paused process cannot act on SIGTERM).
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

const tracked = new Set<ChildProcess>();

export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, opts);
  tracked.add(child);
  child.once('exit', () => tracked.delete(child));
  return child;
}

export function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

export function exited(child: ChildProcess): Promise<void> {
  if (!alive(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGCONT + `signal`, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(child: ChildProcess, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!alive(child)) return;
  const gone = exited(child);
  try {
    child.kill('SIGCONT');
    child.kill(signal);
  } catch {
    // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
      resolve();
    }, graceMs);
  });
  await Promise.race([gone, killed]);
  clearTimeout(timer);
  await gone;
}

/** Last resort on exit: no waiting, every tracked child gets SIGCONT and SIGKILL. */
export function killAllNow(): void {
  for (const child of tracked) {
    try {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...tracked].map((c) => stopProcess(c, graceMs)));
}

export function signalPids(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

/** VmRSS of one process in kB (0 when it is gone). */
export function rssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The process and all its descendants (e.g. the TypeScript loader's esbuild service of a Node worker). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}
