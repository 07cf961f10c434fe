/**
 * Prometheus metrics with Flower's names and labels (flower/events.py), so Grafana dashboards
 * made for Flower work unchanged, plus queue lengths. Kept in memory: counters start from zero
 * when the dashboard starts, as Prometheus expects of a restarted process.
 */

/** prometheus_client's Histogram.DEFAULT_BUCKETS (Flower's default task_runtime_metric_buckets). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, Infinity];

type Labels = Record<string, string>;
const key = (labels: Labels) => JSON.stringify(labels);

class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}

  add(labels: Labels, by: number): void {
    const k = key(labels);
    const v = this.values.get(k) ?? { labels, value: 0 };
    v.value += by;
    this.values.set(k, v);
  }

  set(labels: Labels, value: number): void {
    this.values.set(key(labels), { labels, value });
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    const suffix = this.type === 'counter' ? '_total' : '';
    const base = this.type === 'counter' ? this.name.replace(/_total$/, '') : this.name;
    for (const { labels, value } of this.values.values()) out.push(`${base}${suffix}${fmtLabels(labels)} ${fmt(value)}`);
  }
}

class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string) {}

  observe(labels: Labels, value: number): void {
    const k = key(labels);
    const s = this.series.get(k) ?? { labels, counts: BUCKETS.map(() => 0), sum: 0, count: 0 };
    BUCKETS.forEach((b, i) => {
      if (value <= b) s.counts[i]!++;
    });
    s.sum += value;
    s.count++;
    this.series.set(k, s);
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`);
    for (const s of this.series.values()) {
      BUCKETS.forEach((b, i) => out.push(`${this.name}_bucket${fmtLabels({ ...s.labels, le: b === Infinity ? '+Inf' : fmt(b) })} ${s.counts[i]}`));
      out.push(`${this.name}_count${fmtLabels(s.labels)} ${s.count}`, `${this.name}_sum${fmtLabels(s.labels)} ${fmt(s.sum)}`);
    }
  }
}

export class DashboardMetrics {
  readonly events = new Family('flower_events_total', 'Number of events', 'counter');
  readonly runtime = new Histogram('flower_task_runtime_seconds', 'Task runtime');
  readonly prefetchTime = new Family('flower_task_prefetch_time_seconds', 'The time the task spent waiting at the celery worker to be executed.', 'gauge');
  readonly prefetched = new Family('flower_worker_prefetched_tasks', 'Number of tasks of given type prefetched at a worker', 'gauge');
  readonly online = new Family('flower_worker_online', 'Worker online status', 'gauge');
  readonly executing = new Family('flower_worker_number_of_currently_executing_tasks', 'Number of tasks currently executing at a worker', 'gauge');
  readonly queueLength = new Family('celeriac_queue_length', 'Messages waiting in a task queue', 'gauge');
  readonly deadLetters = new Family('celeriac_queue_dead_letters', 'Dead letters kept for a task queue', 'gauge');

  render(): string {
    const out: string[] = [];
    for (const f of [this.events, this.runtime, this.prefetchTime, this.prefetched, this.online, this.executing, this.queueLength, this.deadLetters]) f.render(out);
    return out.join('\n') + '\n';
  }
}

function fmtLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function fmt(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return Number.isNaN(n) ? 'NaN' : String(n);
}
