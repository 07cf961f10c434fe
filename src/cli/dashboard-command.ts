import type { Command } from 'commander';
import { startDashboard } from '../dashboard/index.ts';
import { maskPassword } from '../transport/registry.ts';
import { VERSION } from '../version.ts';
import { loadApp } from './load-app.ts';
import { nonNegativeNumber, positiveInt } from './parse.ts';

/** `celeriac dashboard` (also `celeriac flower`): the web monitor, on Flower's port and flags. */
export function registerDashboard(program: Command): Command {
  return program
    .command('dashboard')
    .alias('flower')
    .description('Serve the web monitor: workers, tasks, queues, actions, Flower\'s HTTP API and /metrics')
    .option('--port <port>', 'port to listen on', positiveInt('--port', 0), 5555)
    .option('--address <address>', 'address to listen on', '127.0.0.1')
    .option('--db <file>', 'SQLite file keeping the task history across restarts', 'celeriac-dashboard.db')
    .option('--max-tasks <n>', 'tasks kept in the history at most', positiveInt('--max-tasks'), 100_000)
    .option('--retention <hours>', 'hours a task is kept in the history (0: until --max-tasks)', nonNegativeNumber('--retention'), 168)
    .option('--basic-auth <user:password>', 'require HTTP basic auth (several pairs separated by commas)')
    .option('--auth-token <token>', 'accept `Authorization: Bearer <token>` (env CELERIAC_DASHBOARD_TOKEN)')
    .option('--unsafe-no-auth', 'allow a non-loopback --address without authentication')
    .option('--no-enable-events', 'do not ask the workers to send task events')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      const dashboard = await startDashboard(app, {
        port: o.port, address: o.address, db: o.db, maxTasks: o.maxTasks, retentionHours: o.retention,
        basicAuth: typeof o.basicAuth === 'string' ? o.basicAuth.split(',').filter(Boolean) : undefined,
        authToken: o.authToken ?? process.env.CELERIAC_DASHBOARD_TOKEN, unsafeNoAuth: o.unsafeNoAuth === true, enableEvents: o.enableEvents,
      });
      process.stdout.write(`celeriac dashboard v${VERSION}: ${dashboard.url} (broker ${maskPassword(app.conf.broker)}, history ${o.db})\n`);
      const stop = () => void dashboard.close().then(() => app.close()).finally(() => process.exit(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
