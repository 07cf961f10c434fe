/**
 * Celery's worker flags beyond the first ones: the queue options (-X/--exclude-queues, --purge,
 * -I/--include), -O, and Celery's other spellings (--events, --schedule, --scheduler).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Celery } from '../app/celery.ts';
import { ConfigurationError } from '../errors.ts';
import { importModules } from '../modules/import-modules.ts';
import type { Logger } from '../worker/log.ts';

export const commaList = (v: string): string[] => v.split(',').map((q) => q.trim()).filter(Boolean);

export function addWorkerQueueOptions(cmd: Command): Command {
  return cmd
    .option('--events', 'same as -E/--task-events')
    .option('--schedule <file>', 'same as -s/--schedule-filename')
    .addOption(schedulerOption())
    .option('-X, --exclude-queues <queues>', 'comma-separated queues not to consume (taken out of -Q or the default queue)')
    .option('--purge', 'erase every message of the worker\'s queues before it starts consuming')
    .option('--discard', 'same as --purge')
    .option('-I, --include <modules>', 'comma-separated modules to import at start, e.g. task modules the app does not import')
    .addOption(new Option('-O <profile>', 'optimization profile, Celery\'s default or fair: both behave as fair here (a task goes to a slot ' +
      'only when the slot is free)')
      .choices(['default', 'fair']).default('default'));
}

/**
 * The queues the worker consumes after -Q and -X, with the -I modules imported and, with
 * --purge, those queues emptied.
 */
export async function prepareQueues(app: Celery, opts: Record<string, unknown>, logger: Logger): Promise<string[]> {
  if (typeof opts.include === 'string') await importModules(commaList(opts.include));
  const chosen = typeof opts.queues === 'string' ? commaList(opts.queues) : [app.conf.taskDefaultQueue];
  const excluded = typeof opts.excludeQueues === 'string' ? commaList(opts.excludeQueues) : [];
  const queues = chosen.filter((q) => !excluded.includes(q));
  if (queues.length === 0) {
    throw new ConfigurationError(`-X/--exclude-queues ${excluded.join(',')} leaves no queue to consume (queues: ${chosen.join(',')}); name others with -Q`);
  }
  if (opts.purge === true || opts.discard === true) {
    const transport = await app.transport();
    let total = 0;
    for (const q of queues) {
      await transport.declareQueue(q);
      total += await transport.purge(q);
    }
    logger.warning(`purge: erased ${total} ${total === 1 ? 'message' : 'messages'} from ${queues.length} known task ${queues.length === 1 ? 'queue' : 'queues'}.`);
  }
  return queues;
}

/** Celery's -S/--scheduler of beat: celeriac has one scheduler, its JSON schedule file. */
export function schedulerOption(short = ''): Option {
  return new Option(`${short}--scheduler <class>`, 'beat scheduler; celeriac has one, keeping its state in a JSON file (celeriac.beat)')
    .argParser((v: string) => {
      if (!['celeriac.beat', 'celeriac', 'celery.beat:PersistentScheduler', 'celery.beat.PersistentScheduler'].includes(v)) {
        throw new InvalidArgumentError(`celeriac has one scheduler (celeriac.beat, a JSON schedule file); ${v} is not available`);
      }
      return v;
    });
}
