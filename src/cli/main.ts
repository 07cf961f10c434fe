import { Command, Option } from 'commander';
import { censorText } from '../common/censor.ts';
import { CeleriacError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { registerBeat } from './beat-command.ts';
import { registerCall, registerPurge, registerResult } from './client-commands.ts';
import { registerControl, registerEvents, registerInspect, registerStatus } from './control-commands.ts';
import { registerDashboard } from './dashboard-command.ts';
import { registerWorker } from './worker-command.ts';
import { registerMulti } from './multi-command.ts';
import { registerReport } from './report-command.ts';
import { registerShell } from './shell-command.ts';
import { registerList } from './list-command.ts';
import { registerMigrate } from './migrate-command.ts';

/**
 * `celeriac`: Celery's command line. -A/--app and -b/--broker work before the verb
 * (`celeriac -A proj worker`) and after it (`celeriac worker -A proj`).
 */
export function buildProgram(): Command {
  const program = new Command('celeriac')
    .description('Distributed task queue, wire-compatible with Celery 5')
    .version(VERSION, '--version')
    .enablePositionalOptions(false);
  addAppOptions(program);
  const verbs = [registerWorker, registerBeat, registerCall, registerResult, registerPurge, registerInspect, registerControl, registerStatus,
    registerEvents, registerMulti, registerReport, registerShell, registerList, registerMigrate, registerDashboard];
  for (const register of verbs) {
    const cmd = addAppOptions(register(program));
    for (const sub of cmd.commands) addAppOptions(sub);
  }
  return program;
}

export function addAppOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-A, --app <app>', 'application: module, module:attribute or file path (env CELERY_APP)'))
    .addOption(new Option('-b, --broker <url>', 'broker URL (default: sqlite://celeriac.db)'))
    .addOption(new Option('--result-backend <url>', 'result backend URL'))
    .addOption(new Option('--config <module>', 'module of settings, read with app.configFromObject (e.g. celeryconfig or ./config.ts)'))
    .addOption(new Option('--workdir <dir>', 'change to this directory before loading the app'));
}

export async function main(argv: string[]): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0); // the reader is gone (`celeriac inspect … | head`): stop quietly
    throw err;
  });
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CeleriacError) {
      process.stderr.write(`Error: ${censorText(err.message)}\n`);
      process.exit((err as { exitCode?: number }).exitCode ?? 2);
    }
    throw err;
  }
}

