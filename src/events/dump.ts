import type { CeleryEvent } from './event.ts';

const HUMAN_TYPES: Record<string, string> = { 'worker-offline': 'shutdown', 'worker-online': 'started', 'worker-heartbeat': 'heartbeat' };
const SKIP = new Set(['local_received']);

/** One line per event, as `celery events --dump` prints it. */
export class EventDumper {
  private readonly names = new Map<string, string>();

  format(event: CeleryEvent): string {
    const { timestamp, type: rawType, hostname, ...rest } = event;
    const type = rawType.toLowerCase();
    const when = new Date(Number(timestamp) * 1000).toISOString().replace('T', ' ').replace('Z', '');
    const human = HUMAN_TYPES[type] ?? type.replace(/-/g, ' ');
    if (type.startsWith('task-')) {
      const { uuid, ...fields } = rest;
      let task = this.names.get(String(uuid)) ?? '';
      if (type === 'task-received' || type === 'task-sent') {
        const { name, args, kwargs, ...others } = fields;
        task = `${String(name)}(${String(uuid)}) args=${String(args)} kwargs=${String(kwargs)}`;
        this.names.set(String(uuid), task);
        return line(hostname, when, human, `${task} ${join(others)}`, others);
      }
      return line(hostname, when, human, `${task} ${join(fields)}`, fields);
    }
    return line(hostname, when, human, ` ${join(rest)}`, rest);
  }
}

function line(hostname: unknown, when: string, human: string, text: string, fields: Record<string, unknown>): string {
  const sep = Object.keys(fields).some((k) => !SKIP.has(k)) ? ':' : '';
  return `${String(hostname)} [${when}] ${human}${sep}${text.startsWith(' ') ? '' : ' '}${text}`;
}

function join(fields: Record<string, unknown>): string {
  return Object.keys(fields).filter((k) => !SKIP.has(k)).sort().map((k) => `${k}=${py(fields[k])}`).join(', ');
}

function py(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (Array.isArray(v)) return '[' + v.map(py).join(', ') + ']';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}
