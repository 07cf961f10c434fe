import type { Command } from 'commander';
import { Beat } from '../beat/beat.ts';
import { VERSION } from '../version.ts';
import { maskPassword } from '../transport/registry.ts';
import { loadApp } from './load-app.ts';
import { commandLogger, nonNegativeNumber } from './parse.ts';
import { addDaemonOptions, daemonize } from './daemon.ts';
import { schedulerOption } from './worker-options.ts';

/** `celeriac beat`: Celery's `celery beat`, the periodic task scheduler. */
export function registerBeat(program: Command): Command {
  const cmd = program
    .command('beat')
    .description('Start the periodic task scheduler (sends the app\'s beatSchedule entries when due)')
    .option('-s, --schedule <file>', 'schedule file that keeps when each entry last ran (default: beatScheduleFilename, celerybeat-schedule.json)')
    .option('--max-interval <seconds>', 'seconds to sleep at most between checks (default: beatMaxLoopInterval, 300)', nonNegativeNumber('--max-interval'))
    .option('-l, --loglevel <level>', 'DEBUG, INFO, WARNING, ERROR, CRITICAL or FATAL', 'WARNING')
    .option('--log-format <format>', 'text (Celery-like) or json', 'text')
    .addOption(schedulerOption('-S, '));
  addDaemonOptions(cmd);
  return cmd
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals();
      commandLogger(opts);
      const app = await loadApp(opts);
      const daemon = await daemonize(opts);
      const { logger, format } = commandLogger(opts, daemon.write);
      const beat = new Beat(app, { scheduleFilename: opts.schedule, maxInterval: opts.maxInterval, logger });
      daemon.started();
      if (format === 'text') {
        process.stdout.write([
          `celeriac beat v${VERSION} is starting.`,
          `LocalTime -> ${new Date().toISOString().slice(0, 19).replace('T', ' ')} (UTC)`,
          'Configuration ->',
          `    . broker -> ${maskPassword(app.conf.broker)}`,
          `    . scheduler -> celeriac.beat (JSON file)`,
          `    . db -> ${beat.scheduleFilename}`,
          `    . maxinterval -> ${beat.maxInterval}s`,
          `    . entries -> ${Object.keys(app.conf.beatSchedule).length}`,
          '',
        ].join('\n'));
      }
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals > 1) process.exit(1);
        logger.warning(`beat: ${sig} received; shutting down`);
        void beat.stop().then(() => app.close()).then(() => process.exit(0), (err) => {
          logger.error(`beat: error while shutting down: ${String(err)}`);
          process.exit(1);
        });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      await beat.start();
      await beat.join();
    });
}
