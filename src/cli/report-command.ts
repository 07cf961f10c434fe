import type { Command } from 'commander';
import { loadApp } from './load-app.ts';

/** `celeriac report`: Celery's `celery report`, the bug report of the app (no broker needed). */
export function registerReport(program: Command): Command {
  return program
    .command('report')
    .description('Print versions, platform and the app\'s settings (secrets censored), for bug reports')
    .action(async (_o: unknown, cmd: Command) => {
      const app = await loadApp(cmd.optsWithGlobals());
      process.stdout.write('\n' + app.bugreport() + '\n');
    });
}
