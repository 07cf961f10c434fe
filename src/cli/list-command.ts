import type { Command } from 'commander';
import { ConfigurationError } from '../errors.ts';
import { loadApp } from './load-app.ts';

/** `celeriac list bindings`: Celery's `celery list bindings`, the broker's queue bindings. */
export function registerList(program: Command): Command {
  const list = program.command('list').description('Get info from the broker');
  list
    .command('bindings')
    .description('Inspect queue bindings')
    .action(async (_o: unknown, cmd: Command) => {
      const app = await loadApp(cmd.optsWithGlobals());
      try {
        const transport = await app.transport();
        if (!transport.listBindings) {
          const how = /^amqps?:/.test(app.conf.broker) ? ': RabbitMQ lists them with `rabbitmqctl list_bindings` on its host, or in its management plugin' : '';
          throw new ConfigurationError(`broker ${transport.url} cannot list bindings${how}`);
        }
        await transport.declareQueue(app.conf.taskDefaultQueue);
        const row = (q: string, e: string, r: string) => `${q.padEnd(28)} ${e.padEnd(28)} ${r}\n`;
        let text = row('Queue', 'Exchange', 'Routing Key') + row('-'.repeat(16), '-'.repeat(16), '-'.repeat(16));
        const bindings = (await transport.listBindings()).sort((a, b) => a.queue.localeCompare(b.queue) || a.exchange.localeCompare(b.exchange));
        for (const b of bindings) text += row(b.queue, b.exchange, b.routingKey);
        process.stdout.write(text);
      } finally {
        await app.close();
      }
    });
  return list;
}
