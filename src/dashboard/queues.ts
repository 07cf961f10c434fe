import type { Celery } from '../app/celery.ts';
import { fromEnvelope } from '../protocol/envelope.ts';
import type { Inspector } from './inspector.ts';

export interface QueueInfo {
  name: string;
  messages: number;
  /** Dead letters kept for the queue, when the broker keeps them (null: it cannot tell). */
  dead: number | null;
}

export interface DeadLetterInfo {
  queue: string;
  reason: string | null;
  time: number | null;
  task_id: string | null;
  task: string | null;
}

/** The queues the workers consume (active_queues) plus the app's default queue. */
export function queueNames(app: Celery, inspector: Inspector): string[] {
  const names = new Set<string>([app.conf.taskDefaultQueue]);
  for (const info of inspector.workers.values()) {
    for (const q of (Array.isArray(info.active_queues) ? info.active_queues : []) as { name?: unknown }[]) if (typeof q.name === 'string') names.add(q.name);
  }
  return [...names].sort();
}

export async function queueLengths(app: Celery, names: string[]): Promise<QueueInfo[]> {
  const transport = await app.transport();
  return Promise.all(names.map(async (name) => ({
    name,
    messages: await transport.size(name),
    dead: transport.listDeadLetters ? (await transport.listDeadLetters(name, 0)).count : null,
  })));
}

export async function deadLetters(app: Celery, queue: string, limit: number): Promise<{ count: number; items: DeadLetterInfo[] } | null> {
  const transport = await app.transport();
  if (!transport.listDeadLetters) return null;
  const { count, items } = await transport.listDeadLetters(queue, limit);
  return {
    count,
    items: items.map((d) => {
      let headers: Record<string, unknown> = {};
      try {
        headers = d.envelope ? (fromEnvelope(d.envelope).message.headers as Record<string, unknown>) : {};
      } catch {
        // an entry that is not an envelope is listed with its reason alone
      }
      return { queue, reason: d.reason, time: d.time, task_id: str(headers.id), task: str(headers.task) };
    }),
  };
}

const str = (v: unknown) => (typeof v === 'string' ? v : null);
