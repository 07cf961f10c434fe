/**
 * What else the machine did during the run. Cores busy in total (/proc/stat), used by the
 * benchmark's own processes (this process and every child it reaped: /proc/self/stat utime,
 * stime, cutime, cstime — read after every child has exited), and by the broker servers
 * (redis-server, beam.smp), whatever remains is other load, which makes figures noisy.
 */
import fs from 'node:fs';

const TICK = 100; // USER_HZ on Linux

interface Snapshot {
  at: number;
  busy: number;
  own: number;
  brokers: Map<number, number>;
}

function busyTicks(): number {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return user + nice + system + irq + softirq + steal;
}

function statFields(pid: number | 'self'): string[] | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU time (user + system, seconds) a process has used so far; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / TICK : 0;
}

/** CPU seconds used so far by the broker servers running here (redis-server, beam.smp). */
export function brokerCpuSeconds(): number {
  let t = 0;
  for (const v of brokerTicks().values()) t += v;
  return t / TICK;
}

function brokerTicks(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let comm: string;
    try {
      comm = fs.readFileSync(`/proc/${name}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm !== 'redis-server' && comm !== 'beam.smp') continue;
    const f = statFields(Number(name));
    if (f) out.set(Number(name), Number(f[11]) + Number(f[12]));
  }
  return out;
}

function ownTicks(): number {
  const f = statFields('self')!;
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

export function loadSnapshot(): Snapshot {
  return { at: performance.now(), busy: busyTicks(), own: ownTicks(), brokers: brokerTicks() };
}

export interface LoadReport {
  seconds: number;
  /** Average cores busy, machine-wide. */
  totalCores: number;
  benchmarkCores: number;
  brokerCores: number;
  otherCores: number;
  loadavgAtEnd: string;
}

/** Call after every child process has exited. */
export function loadSince(start: Snapshot): LoadReport {
  const seconds = (performance.now() - start.at) / 1000;
  const own = ownTicks() - start.own;
  const now = brokerTicks();
  let brokers = 0;
  for (const [pid, t] of now) brokers += t - (start.brokers.get(pid) ?? 0);
  const total = (busyTicks() - start.busy) / TICK / seconds;
  const benchmark = own / TICK / seconds;
  const broker = brokers / TICK / seconds;
  return {
    seconds,
    totalCores: total,
    benchmarkCores: benchmark,
    brokerCores: broker,
    otherCores: Math.max(0, total - benchmark - broker),
    loadavgAtEnd: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}
