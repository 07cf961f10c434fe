import '../control/control.ts';
import type { Command } from 'commander';
import type { Celery } from '../app/celery.ts';
import type { Replies } from '../control/mailbox.ts';
import { EventDumper } from '../events/dump.ts';
import { receiveEvents } from '../events/receiver.ts';
import { ConfigurationError } from '../errors.ts';
import { dumps } from '../protocol/json.ts';
import { loadApp } from './load-app.ts';
import { nonNegativeNumber } from './parse.ts';
import { addDaemonOptions, daemonize } from './daemon.ts';

const INSPECT = ['ping', 'active', 'reserved', 'scheduled', 'registered', 'stats', 'revoked', 'query_task', 'conf', 'report', 'active_queues', 'clock'];

/** Positional words of each control command, mapped to Celery's argument names (`Panel.meta` args). */
const CONTROL: Record<string, (words: string[], o: Record<string, unknown>) => Record<string, unknown>> = {
  revoke: (w, o) => ({ task_id: w, terminate: o.terminate === true, signal: o.signal ?? 'SIGTERM' }),
  terminate: (w) => ({ signal: w[0], task_id: w.slice(1) }),
  rate_limit: (w) => ({ task_name: w[0], rate_limit: w[1] }),
  time_limit: (w) => ({ task_name: w[0], soft: num(w[1]), hard: num(w[2]) }),
  shutdown: () => ({}),
  pool_grow: (w) => ({ n: num(w[0]) ?? 1 }),
  pool_shrink: (w) => ({ n: num(w[0]) ?? 1 }),
  autoscale: (w) => ({ max: num(w[0]) ?? null, min: num(w[1]) ?? null }),
  pool_restart: () => ({ modules: null, reload: false }),
  add_consumer: (w) => ({ queue: w[0], exchange: w[1] ?? null, exchange_type: w[2] ?? null, routing_key: w[3] ?? null }),
  cancel_consumer: (w) => ({ queue: w[0] }),
  enable_events: () => ({}),
  disable_events: () => ({}),
  heartbeat: () => ({}),
  election: (w) => ({ id: w[0], topic: w[1], action: w[2] ?? null }),
};

const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

function destinationOption(cmd: Command): Command {
  return cmd
    .option('-d, --destination <nodes>', 'comma-separated node names')
    .option('-t, --timeout <seconds>', 'seconds to wait for replies', nonNegativeNumber('--timeout'), 1)
    .option('-j, --json', 'print the replies as JSON');
}

function target(o: Record<string, unknown>) {
  const destination = typeof o.destination === 'string' ? o.destination.split(',').map((d) => d.trim()).filter(Boolean) : undefined;
  return { destination, timeout: o.timeout as number };
}

function print(replies: Replies, json: boolean): void {
  if (json) {
    process.stdout.write(dumps(Object.assign({}, ...replies)) + '\n');
    return;
  }
  for (const reply of replies) {
    for (const [node, value] of Object.entries(reply)) {
      const error = value && typeof value === 'object' && 'error' in value;
      process.stdout.write(`->  ${node}: ${error ? 'ERROR' : 'OK'}\n`);
      const text = value && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && ('ok' in value || 'error' in value)
        ? String(Object.values(value)[0])
        : indented(value);
      process.stdout.write(text.split('\n').map((l) => '        ' + l).join('\n') + '\n');
    }
  }
  const n = replies.length;
  if (n === 0) process.stderr.write('Error: No nodes replied within time constraint\n');
  else process.stdout.write(`\n${n} ${n === 1 ? 'node' : 'nodes'} online.\n`);
}

/** JSON indented by 4, as Celery's json.dumps(indent=4): NaN, Infinity and big integers as Python writes them. */
function indented(value: unknown): string {
  const mark = (_k: string, v: unknown) => (typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v)) ? `\u0000${dumps(v)}\u0000` : v);
  return (JSON.stringify(value, mark, 4) ?? 'null').replace(/"\\u0000(.*?)\\u0000"/g, '$1');
}

async function withApp(o: Record<string, unknown>, run: (app: Celery) => Promise<Replies | void>): Promise<void> {
  const app = await loadApp(o);
  try {
    const replies = await run(app);
    if (replies) {
      print(replies, o.json === true);
      if (replies.length === 0) process.exitCode = 1;
    }
  } finally {
    await app.close();
  }
}

export function registerInspect(program: Command): Command {
  return destinationOption(program.command('inspect <method> [args...]').description(`Inspect workers: ${INSPECT.join(', ')}`)).action(
    async (method: string, words: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      if (!INSPECT.includes(method)) throw new ConfigurationError(`unknown inspect method ${JSON.stringify(method)}; use one of ${INSPECT.join(', ')}`);
      const args = method === 'query_task' ? { ids: words } : method === 'active' ? { safe: false } : {};
      await withApp(o, (app) => app.control.broadcast(method, args, target(o)));
    },
  );
}

export function registerControl(program: Command): Command {
  return destinationOption(program.command('control <method> [args...]').description(`Control workers: ${Object.keys(CONTROL).join(', ')}`))
    .option('--terminate', 'revoke: also stop the task when it is running')
    .option('--signal <name>', 'revoke: signal name recorded with --terminate', 'SIGTERM')
    .action(async (method: string, words: string[], _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const build = CONTROL[method];
      if (!build) throw new ConfigurationError(`unknown control method ${JSON.stringify(method)}; use one of ${Object.keys(CONTROL).join(', ')}`);
      await withApp(o, (app) => app.control.broadcast(method, build(words, o), { ...target(o), reply: method !== 'shutdown' }));
    });
}

export function registerStatus(program: Command): Command {
  return destinationOption(program.command('status').description('Show the workers that answer a ping')).action(async (_o: unknown, cmd: Command) => {
    const o = cmd.optsWithGlobals();
    await withApp(o, async (app) => {
      const replies = await app.control.broadcast('ping', {}, target(o));
      for (const r of replies) for (const node of Object.keys(r)) process.stdout.write(`${node}: OK\n`);
      process.stdout.write(`\n${replies.length} ${replies.length === 1 ? 'node' : 'nodes'} online.\n`);
      if (replies.length === 0) process.exitCode = 1;
    });
  });
}

export function registerEvents(program: Command): Command {
  const cmd = program
    .command('events')
    .description('Dump the live event stream (as celery events --dump)')
    .option('--json', 'one JSON event per line')
    .option('-d, --dump', 'dump the events to stdout (what celeriac events does; Celery\'s default is its curses monitor)')
    .option('-c, --camera <class>', 'Celery\'s snapshot camera: not available in celeriac (use --dump, or Flower)')
    .option('-F, --frequency <seconds>', 'with a camera: seconds between snapshots')
    .option('--freq <seconds>', 'same as -F/--frequency')
    .option('-r, --maxrate <rate>', 'with a camera: snapshots at most this often')
    .option('-l, --loglevel <level>', 'accepted for Celery\'s sake (events are printed, not logged)', 'WARNING');
  addDaemonOptions(cmd);
  return cmd
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      if (o.camera !== undefined) throw new ConfigurationError('celeriac events has no snapshot cameras: use --dump (or --json), or Flower');
      const app = await loadApp(o);
      (await daemonize(o)).started();
      const transport = await app.transport();
      if (!transport.broadcast) throw new ConfigurationError(`broker ${transport.url} has no exchanges (its transport sets no "broadcast"): events need them, as every built-in broker has`);
      process.stdout.write('-> celeriac events: Starting capture...\n');
      await app.control.broadcast('heartbeat', {}, { reply: false });
      const dumper = new EventDumper();
      await receiveEvents(transport.broadcast, (e) => {
        process.stdout.write((o.json ? dumps(e) : dumper.format(e)) + '\n');
      });
      await new Promise(() => {});
    });
}
