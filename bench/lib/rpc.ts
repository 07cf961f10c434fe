/**
 * One JSON object per line each way with an agent process (bench/agents/client.ts or
 * bench/py/agent.py): `{id, op, ...args}` → `{id, ok, result}` or `{id, ok: false, error}`.
 * The agent writes `{id: 0, ok: true}` once it is ready.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import readline from 'node:readline';
import { alive, spawnTracked, stopProcess } from './proc.ts';

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class Agent {
  private readonly child: ChildProcess;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private stderrTail = '';
  readonly ready: Promise<void>;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    opts: SpawnOptions,
  ) {
    this.child = spawnTracked(cmd, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => ((readyResolve = res), (readyReject = rej)));
    this.waiters.set(0, { resolve: () => readyResolve(), reject: readyReject });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-4000);
      if (process.env.BENCH_DEBUG) process.stderr.write(`[${name}] ${d}`);
    });
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let msg: { id: number; ok: boolean; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        this.stderrTail = (this.stderrTail + line + '\n').slice(-4000);
        return;
      }
      const w = this.waiters.get(msg.id);
      if (!w) return;
      this.waiters.delete(msg.id);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new Error(`${name}: ${msg.error}`));
    });
    this.child.on('exit', (code, signal) => {
      const err = new Error(`${name} exited (${signal ?? code})${this.stderrTail ? `:\n${this.stderrTail.trim()}` : ''}`);
      for (const w of this.waiters.values()) w.reject(err);
      this.waiters.clear();
    });
    this.child.stdin!.on('error', () => undefined);
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (!alive(this.child)) return Promise.reject(new Error(`${this.name} is not running${this.stderrTail ? `:\n${this.stderrTail.trim()}` : ''}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiters.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
  }

  /** Ask the agent to clean up and exit; kill it if it does not within `graceMs`. */
  async close(graceMs = 20_000): Promise<void> {
    if (!alive(this.child)) return;
    await Promise.race([this.call('close').catch(() => undefined), new Promise((r) => setTimeout(r, graceMs))]);
    this.child.stdin!.end();
    await stopProcess(this.child, 5000);
  }
}
