import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ConfigurationError, UnsupportedByBackend } from '../errors.ts';
import { dumps, parsePythonDate } from '../protocol/json.ts';
import { loadApp } from './load-app.ts';
import { jsonArg, nonNegativeNumber } from './parse.ts';

const isArray = (v: unknown): v is unknown[] => Array.isArray(v);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function date(flag: string) {
  return (value: string) => {
    const d = parsePythonDate(value);
    if (!d) throw new InvalidArgumentError(`${flag} must be an ISO-8601 date, got ${JSON.stringify(value)}`);
    return d;
  };
}

export function registerCall(program: Command): Command {
  return program
    .command('call <name>')
    .description('Send a task by name and print its id')
    .option('-a, --args <json>', 'positional arguments, a JSON array', jsonArg('--args', isArray, 'a JSON array'), [])
    .option('-k, --kwargs <json>', 'keyword arguments, a JSON object', jsonArg('--kwargs', isObject, 'a JSON object'), {})
    .option('--eta <iso>', 'earliest time to run', date('--eta'))
    .option('--countdown <seconds>', 'seconds before it may run', nonNegativeNumber('--countdown'))
    .option('--expires <seconds>', 'seconds after which it is revoked', nonNegativeNumber('--expires'))
    .option('--queue <queue>', 'queue to send it to')
    .option('--priority <n>', 'message priority', nonNegativeNumber('--priority'))
    .option('--exchange <name>', 'exchange recorded with the message (celeriac routes by queue)')
    .option('--routing-key <key>', 'routing key; without --queue, the queue it names')
    .option('--serializer <name>', 'json (the only body format celeriac writes; auth with message signing set up)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      if (o.serializer !== undefined && o.serializer !== 'json' && o.serializer !== app.conf.taskSerializer) {
        throw new ConfigurationError(`--serializer ${o.serializer}: celeriac sends json (or auth when the app signs messages)`);
      }
      const result = await app.sendTask(name, o.args, o.kwargs, {
        eta: o.eta, countdown: o.countdown, expires: o.expires, queue: o.queue ?? o.routingKey, priority: o.priority,
        exchange: o.exchange, routingKey: o.routingKey,
      });
      process.stdout.write(result.id + '\n');
      await app.close();
    });
}

export function registerResult(program: Command): Command {
  return program
    .command('result <taskId>')
    .description('Wait for a task and print its result')
    .option('-t, --task <name>', 'name of the task (Celery\'s option, for a task with its own backend; celeriac reads the app\'s)')
    .option('--traceback', 'print the traceback of a failed task instead of its result')
    .option('--timeout <seconds>', 'seconds to wait (default: forever)', nonNegativeNumber('--timeout'))
    .action(async (taskId: string, _opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      if (/^rpc:/i.test(app.backendUrl() ?? '')) {
        await app.close();
        throw new UnsupportedByBackend(
          'celeriac result cannot read an rpc:// result: rpc results reach only the client that sent the task; ' +
            'wait for it there (result.get()), or use a Redis or SQLite result backend to read results from anywhere',
        );
      }
      const result = app.AsyncResult(taskId);
      try {
        const value = await result.get({ timeout: o.timeout, propagate: false });
        const state = await result.state;
        if (o.traceback) process.stdout.write(((await result.traceback) ?? '') + '\n');
        // Python's json, as the result was stored: NaN/Infinity and big integers stay as they are
        else process.stdout.write((state === 'SUCCESS' ? dumps(value) : `${state}: ${dumps(value)}`) + '\n');
        if (state !== 'SUCCESS') process.exitCode = 1;
      } finally {
        await app.close();
      }
    });
}

export function registerPurge(program: Command): Command {
  return program
    .command('purge')
    .description('Erase all messages from the task queues')
    .option('-f, --force', 'do not ask for confirmation')
    .option('-Q, --queues <queues>', 'comma-separated queues to purge (default: the default queue)')
    .option('-X, --exclude-queues <queues>', 'comma-separated queues not to purge')
    .action(async (_opts: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      const excluded: string[] = o.excludeQueues ? String(o.excludeQueues).split(',').map((q) => q.trim()) : [];
      const queues: string[] = (o.queues ? String(o.queues).split(',').map((q) => q.trim()).filter(Boolean) : [app.conf.taskDefaultQueue])
        .filter((q) => !excluded.includes(q));
      if (!o.force) {
        throw new ConfigurationError(`purge would delete every message in ${queues.join(', ')}; run it again with -f/--force to confirm`);
      }
      const transport = await app.transport();
      let total = 0;
      for (const q of queues) total += await transport.purge(q);
      process.stdout.write(`Purged ${total} ${total === 1 ? 'message' : 'messages'} from ${queues.length} known task ${queues.length === 1 ? 'queue' : 'queues'}.\n`);
      await app.close();
    });
}
