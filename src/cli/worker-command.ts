import type { Command } from 'commander';
import { Beat } from '../beat/beat.ts';
import { Worker } from '../worker/worker.ts';
import { loadApp } from './load-app.ts';
import { InvalidArgumentError } from 'commander';
import { resolveAppName } from './find-app.ts';
import { commandLogger, nonNegativeNumber, positiveInt } from './parse.ts';
import { addDaemonOptions, daemonize, nodeFile } from './daemon.ts';
import { addWorkerQueueOptions, prepareQueues } from './worker-options.ts';

function positiveNumber(flag: string): (value: string) => number {
  const parse = nonNegativeNumber(flag);
  return (value) => {
    const n = parse(value);
    if (n === 0) throw new InvalidArgumentError(`${flag} must be a number > 0, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** Celery's `--autoscale 10,3` (MAX,MIN; MIN defaults to 0, here 1: a pool keeps one child). */
function autoscaleArg(value: string): [number, number] {
  const [max, min = '1'] = value.split(',').map((s) => s.trim());
  const n = [Number(max), Number(min)] as [number, number];
  if (!n.every((x) => Number.isInteger(x) && x >= 1) || n[0] < n[1]) {
    throw new InvalidArgumentError(`--autoscale must be MAX,MIN with integers MAX ≥ MIN ≥ 1 (e.g. 10,3), got ${JSON.stringify(value)}`);
  }
  return n;
}

export function registerWorker(program: Command): Command {
  const cmd = program
    .command('worker')
    .description('Start a worker')
    .option('-l, --loglevel <level>', 'DEBUG, INFO, WARNING, ERROR, CRITICAL or FATAL', 'INFO')
    .option('-c, --concurrency <n>', 'tasks run at once (default: workerConcurrency, 10)', positiveInt('--concurrency'))
    .option('-Q, --queues <queues>', 'comma-separated queues to consume')
    .option('-n, --hostname <name>', 'node name; %h, %n and %d are expanded', 'celery@%h')
    .option('--prefetch-multiplier <n>', 'messages reserved per slot (default 4)', positiveInt('--prefetch-multiplier', 0))
    .option('--log-format <format>', 'text (Celery-like) or json', 'text')
    .option('-E, --task-events', 'send task events (for monitors such as celery events and Flower)')
    .option('--heartbeat-interval <seconds>', 'seconds between worker heartbeats', nonNegativeNumber('--heartbeat-interval'), 2)
    .option('--without-heartbeat', 'send no worker heartbeats')
    .option('--without-mingle', 'do not synchronize with other workers at start-up')
    .option('-S, --statedb <path>', 'file that keeps revoked tasks and the logical clock across restarts; %n, %h, %d expanded')
    .option('--without-gossip', 'do not follow other workers\' events')
    .option('-B, --beat', 'also run the periodic task scheduler (celeriac beat) in this process; run only one per schedule')
    .option('-s, --schedule-filename <file>', 'with -B: the beat schedule file (default: beatScheduleFilename, celerybeat-schedule.json)')
    .option('--max-interval <seconds>', 'with -B: seconds beat sleeps at most between checks', nonNegativeNumber('--max-interval'))
    .option('-P, --pool <pool>', 'async (default), threads, processes or solo; prefork, gevent and eventlet are accepted as Celery\'s names')
    .option('--time-limit <seconds>', 'hard time limit of tasks without their own (processes and threads stop anything)', positiveNumber('--time-limit'))
    .option('--soft-time-limit <seconds>', 'soft time limit of tasks without their own', positiveNumber('--soft-time-limit'))
    .option('--max-tasks-per-child <n>', 'replace a pool child after this many tasks', positiveInt('--max-tasks-per-child'))
    .option('--max-memory-per-child <KiB>', 'replace a pool child whose resident memory passed this many KiB after a task', positiveInt('--max-memory-per-child'))
    .option('--autoscale <max,min>', 'grow the pool up to MAX under load, shrink it to MIN when idle', autoscaleArg);
  // Celery's other worker flags and daemonization options (worker-options.ts, daemon.ts).
  addDaemonOptions(addWorkerQueueOptions(cmd));
  return cmd
    .action(async (_opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals();
      commandLogger(opts); // bad -l/--log-format fail before anything starts
      const app = await loadApp(opts);
      const daemon = await daemonize(opts);
      const { logger, format } = commandLogger(opts, daemon.write);
      const queues = await prepareQueues(app, opts, logger);
      const worker = new Worker(app, {
        queues,
        concurrency: opts.concurrency,
        prefetchMultiplier: opts.prefetchMultiplier,
        hostname: opts.hostname,
        logger,
        banner: format === 'text',
        taskEvents: opts.taskEvents === true || opts.events === true ? true : undefined,
        statedb: nodeFile(opts.statedb, opts),
        heartbeatInterval: opts.heartbeatInterval,
        withoutHeartbeat: opts.heartbeat === false || opts.withoutHeartbeat === true,
        withoutMingle: opts.mingle === false || opts.withoutMingle === true,
        withoutGossip: opts.gossip === false || opts.withoutGossip === true,
        pool: opts.pool,
        appSpec: resolveAppName({ cliValue: opts.app }),
        logFormat: format,
        timeLimit: opts.timeLimit,
        softTimeLimit: opts.softTimeLimit,
        maxTasksPerChild: opts.maxTasksPerChild,
        maxMemoryPerChild: opts.maxMemoryPerChild,
        autoscale: opts.autoscale,
      });
      // Celery's -B: the scheduler runs in the worker process, on the worker's app.
      const beat = opts.beat === true ? new Beat(app, { scheduleFilename: opts.scheduleFilename ?? opts.schedule, maxInterval: opts.maxInterval, logger }) : undefined;
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        signals++;
        if (signals === 1) {
          logger.warning(`worker: ${sig} received; finishing active tasks (press again for cold shutdown)`);
          // Beat first: the worker's shutdown closes the app's connections.
          void Promise.resolve(beat?.stop()).then(() => worker.shutdown({ sig })).then(() => process.exit(worker.exitCode));
        } else {
          void worker.shutdown({ cold: true, sig }).finally(() => process.exit(1));
        }
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      // Its task modules load before anything connects: a module that fails to load is a worker that cannot start.
      await app.finalize();
      daemon.started();
      await worker.start();
      await beat?.start();
      await worker.join();
      await beat?.stop();
      process.exit(worker.exitCode);
    });
}
