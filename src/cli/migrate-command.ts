/**
 * `celeriac migrate <source> <destination>`: Celery's `celery migrate` (celery/contrib/migrate.py),
 * move task messages from one broker to another, headers, properties and body as they are.
 */
import type { Command } from 'commander';
import { ConfigurationError } from '../errors.ts';
import { createTransport } from '../transport/registry.ts';
import type { Delivery, Transport } from '../transport/types.ts';
import { loadApp } from './load-app.ts';
import { nonNegativeNumber, positiveInt } from './parse.ts';
import { commaList } from './worker-options.ts';

export function registerMigrate(program: Command): Command {
  return program
    .command('migrate <source> <destination>')
    .description('Move task messages from one broker to another (Celery\'s warning holds: keep a backup of the messages)')
    .option('-n, --limit <n>', 'number of messages to move at most', positiveInt('--limit'))
    .option('-t, --timeout <seconds>', 'stop when no message came for this long (default 1)', nonNegativeNumber('--timeout'), 1)
    .option('-a, --ack-messages', 'remove the messages from the source (without it they are copied, and stay there)')
    .option('-T, --tasks <names>', 'comma-separated task names: move only these')
    .option('-Q, --queues <queues>', 'comma-separated queues to move (default: the default queue); source:destination renames one')
    .option('-F, --forever', 'keep moving messages until interrupted')
    .action(async (source: string, destination: string, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      const renames = new Map<string, string>();
      for (const q of typeof o.queues === 'string' ? commaList(o.queues) : [app.conf.taskDefaultQueue]) {
        const [src = q, dst = src] = q.split(':');
        renames.set(src, dst);
      }
      const from = createTransport(source, { connect_timeout: app.conf.brokerConnectionTimeout });
      const to = createTransport(destination, { connect_timeout: app.conf.brokerConnectionTimeout });
      let stopping = false;
      process.once('SIGINT', () => (stopping = true));
      process.once('SIGTERM', () => (stopping = true));
      try {
        const n = await migrate(from, to, {
          renames, limit: o.limit, timeoutMs: o.timeout * 1000, ack: o.ackMessages === true, forever: o.forever === true,
          tasks: typeof o.tasks === 'string' ? commaList(o.tasks) : undefined, stopped: () => stopping,
          onMigrate: (count, d) => process.stdout.write(`Migrating task ${count}/${o.limit ?? '?'}: ${d.message.headers.task ?? '?'}[${d.message.headers.id ?? '?'}]\n`),
        });
        process.stdout.write(`Migrated ${n} ${n === 1 ? 'message' : 'messages'}.\n`);
      } finally {
        await Promise.allSettled([from.close(), to.close(), app.close()]);
      }
    });
}

export interface MigrateOptions {
  /** Source queue → destination queue. */
  renames: Map<string, string>;
  limit?: number;
  timeoutMs: number;
  ack: boolean;
  forever: boolean;
  tasks?: string[];
  stopped?: () => boolean;
  onMigrate?: (count: number, delivery: Delivery) => void;
}

/**
 * Copy each message to the destination queue, then acknowledge it at the source (`ack`) or give
 * it back there once done (as Celery's unacknowledged messages return when its connection closes).
 */
export async function migrate(from: Transport, to: Transport, opts: MigrateOptions): Promise<number> {
  if (from.url === to.url) throw new ConfigurationError(`migrate: source and destination are the same broker (${from.url})`);
  const queues = [...opts.renames.keys()];
  for (const q of queues) await from.declareQueue(q);
  for (const q of opts.renames.values()) await to.declareQueue(q);
  const keep: Delivery[] = [];
  let count = 0;
  try {
    while (!opts.stopped?.() && (opts.limit === undefined || count < opts.limit)) {
      const room = Math.min(100, opts.limit === undefined ? 100 : opts.limit - count);
      const batch = await from.fetch(queues, room, opts.forever ? 1000 : opts.timeoutMs);
      if (batch.length === 0) {
        if (opts.forever) continue;
        break;
      }
      for (const d of batch) {
        const task = d.message.headers.task;
        if (opts.tasks && !(typeof task === 'string' && opts.tasks.includes(task))) {
          keep.push(d);
          continue;
        }
        const queue = opts.renames.get(d.queue) ?? d.queue;
        const renamed = queue !== d.queue;
        await to.publish(queue, d.message, { exchange: d.info.exchange, routingKey: renamed && d.info.routingKey === d.queue ? queue : d.info.routingKey });
        count++;
        opts.onMigrate?.(count, d);
        if (opts.ack) await d.ack();
        else keep.push(d);
      }
    }
  } finally {
    for (const d of keep.reverse()) await d.restore();
  }
  return count;
}
