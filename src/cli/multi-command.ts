/**
 * `celeriac multi`: Celery's `celery multi` (celery/bin/multi.py), several named workers started
 * in the background, each with its pid and log file, and stopped by the pids in those files.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { ConfigurationError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { type MultiNode, NamespacedOptionParser, parseNodes } from './multi-parser.ts';
import { isAlive, readPid } from './pidfile.ts';

const USAGE = `usage: celeriac multi start <node1 node2 nodeN|range> [worker options]
       celeriac multi stop <n1 n2 nN|range> [-SIG (default: -TERM)]
       celeriac multi stopwait <n1 n2 nN|range> [-SIG (default: -TERM)]
       celeriac multi restart <n1 n2 nN|range> [-SIG] [worker options]
       celeriac multi kill <n1 n2 nN|range>
       celeriac multi show <n1 n2 nN|range> [worker options]
       celeriac multi get hostname <n1 n2 nN|range> [worker options]
       celeriac multi names <n1 n2 nN|range>
       celeriac multi expand template <n1 n2 nN|range>

multi options (the rest go to each worker; repeat the same ones to stop and restart):
    --pidfile=FILE       default %n.pid (in the current directory)
    --logfile=FILE       default %n%I.log
    -n, --hostname=HOST  host part of the node names (default: this host)
    --range-prefix=NAME  name of numbered nodes (default celery: celery1, celery2, ...)
    --prefix, --suffix   around each node name
    --executable=PATH    the Node executable (default: this one)
    --nosplash, --quiet, --verbose, --no-color
per-node options: -c:1 10 (first node), -Q:1-3 images (nodes 1 to 3), -c:foo,bar 5 (named nodes)
abbreviations: %n short name, %h node name, %d host name, %i/%I process index (in the worker)
`;

const RESERVED = ['--nosplash', '--quiet', '-q', '--verbose', '--no-color'];

interface Out {
  verbose: boolean;
  say(m: string, newline?: boolean): void;
  note(m: string, newline?: boolean): void;
}

export function registerMulti(program: Command): Command {
  return program
    .command('multi')
    .description('Start and stop several named workers in the background (as celery multi)')
    .argument('[command]', 'start, stop, stopwait, restart, kill, show, get, names, expand or help')
    .argument('[args...]', 'node names or a count, then worker options')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', '\n' + USAGE)
    .action(async (_c: unknown, _a: unknown, _o: unknown, cmd: Command) => {
      // Celery reads the raw arguments, options given before `multi` moved after it.
      const raw = ((cmd.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? process.argv).slice(2);
      const at = raw.indexOf('multi');
      const args = [...raw.slice(at + 1), ...raw.slice(0, at)];
      process.exitCode = await runMulti(args);
    });
}

export async function runMulti(argv: string[]): Promise<number> {
  const args = argv.filter((a) => !RESERVED.includes(a));
  const out = terminal(!argv.includes('--quiet') && !argv.includes('-q'), argv.includes('--verbose'));
  const [command, ...rest] = args;
  const splash = () => out.note(`celeriac multi v${VERSION}`);
  const nodes = () => cluster(rest);
  switch (command) {
    case 'start':
      if (!argv.includes('--nosplash')) splash();
      return start(nodes(), out);
    case 'stop':
      if (!argv.includes('--nosplash')) splash();
      await stop(nodes(), signalArg(rest), out, false);
      return 0;
    case 'stopwait':
    case 'stop_verify':
      if (!argv.includes('--nosplash')) splash();
      await stop(nodes(), signalArg(rest), out, true);
      return 0;
    case 'restart':
      if (!argv.includes('--nosplash')) splash();
      return restart(nodes(), signalArg(rest), out);
    case 'kill':
      if (!argv.includes('--nosplash')) splash();
      for (const node of withPids(nodes(), out)) {
        out.note(`Sending SIGKILL to node ${node.name} (${pidOf(node)})`);
        send(node, 'SIGKILL', out);
      }
      return 0;
    case 'show':
      out.say(nodes().map((n) => n.commandLine.map(quote).join(' ')).join('\n'));
      return 0;
    case 'get': {
      const [wanted, ...more] = rest;
      const node = cluster(more).find((n) => n.name === wanted);
      if (!node) return 1;
      out.say(node.argv.map(quote).join(' '));
      return 0;
    }
    case 'names':
      out.say(nodes().map((n) => n.name).join('\n'));
      return 0;
    case 'expand': {
      const [template, ...more] = rest;
      if (template === undefined) throw new ConfigurationError('celeriac multi expand: give a template, e.g. `expand %n.pid w1 w2`');
      out.say(cluster(more).map((n) => n.expand(template)).join('\n'));
      return 0;
    }
    case 'help':
      out.say(USAGE);
      return 0;
    default:
      process.stderr.write(`${command === undefined ? '' : `Invalid command: ${command}\n`}${USAGE}`);
      return 1;
  }
}

function terminal(notes: boolean, verbose: boolean): Out {
  const say = (m: string, newline = true) => void process.stdout.write(m + (newline ? '\n' : ''));
  return { verbose, say, note: (m, newline) => notes && say(m, newline) };
}

function cluster(args: string[]): MultiNode[] {
  const p = new NamespacedOptionParser(args);
  return parseNodes(p, { executable: process.execPath, prefixArgs: [...process.execArgv, process.argv[1]!] });
}

/** Celery's _find_sig_argument: the last `-9`, `-KILL` or `-SIGKILL` among the options. */
function signalArg(args: string[]): NodeJS.Signals | number {
  for (const arg of [...args].reverse()) {
    if (/^-\d+$/.test(arg)) return Number(arg.slice(1));
    if (!arg.startsWith('-') || arg.startsWith('--')) continue;
    const name = arg.slice(1).toUpperCase();
    for (const sig of [name, `SIG${name}`]) if (sig in os.constants.signals) return sig as NodeJS.Signals;
  }
  return 'SIGTERM';
}

function signalName(sig: NodeJS.Signals | number): string {
  if (typeof sig === 'string') return sig.replace(/^SIG/, '');
  return Object.entries(os.constants.signals).find(([, n]) => n === sig)?.[0].replace(/^SIG/, '') ?? String(sig);
}

function pidOf(node: MultiNode): number | undefined {
  try {
    return readPid(node.pidfile);
  } catch {
    return undefined;
  }
}

function* withPids(nodes: MultiNode[], out: Out, onDown = (n: MultiNode) => out.note(`> ${n.name}: DOWN`)): Generator<MultiNode> {
  for (const node of nodes) {
    if (pidOf(node)) yield node;
    else onDown(node);
  }
}

function send(node: MultiNode, sig: NodeJS.Signals | number, out: Out): boolean {
  const pid = pidOf(node);
  if (!pid) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    out.note(`Could not signal ${node.name} (${pid}): No such process`);
    return false;
  }
}

/** Start one node (`celeriac worker --detach ...`), which returns once the worker has started: its pid file written, its modules loaded. */
function startNode(node: MultiNode, out: Out): Promise<number> {
  if (out.verbose) out.say(`  ${node.commandLine.map(quote).join(' ')}`);
  const child = spawn(node.executable, [...node.command.prefixArgs, ...node.argv], { stdio: ['ignore', 'inherit', 'inherit'] });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      out.note(`* Could not start ${node.executable}: ${err.message}`);
      resolve(1);
    });
    child.once('close', (code, signal) => {
      if (signal) out.note(`* Child was terminated by signal ${signal}`);
      else if (code) out.note(`* Child terminated with exit code ${code}`);
      resolve(signal ? 1 : (code ?? 1));
    });
  });
}

async function start(nodes: MultiNode[], out: Out): Promise<number> {
  out.note('> Starting nodes...');
  let failed = 0;
  for (const node of nodes) {
    out.note(`\t> ${node.name}: `, false);
    const code = await startNode(node, out);
    out.note(code ? 'FAILED' : 'OK');
    if (code) failed = 1;
  }
  return failed;
}

/** Send `sig` to each node with a pid file; with `wait`, poll until each is gone (Celery's stopwait). */
async function stop(nodes: MultiNode[], sig: NodeJS.Signals | number, out: Out, wait: boolean, onDown?: (n: MultiNode) => Promise<void>): Promise<void> {
  const down = async (n: MultiNode) => {
    if (onDown) await onDown(n);
  };
  const live = [...withPids(nodes, out, (n) => {
    out.note(`> ${n.name}: DOWN`);
  })];
  if (live.length === 0) return;
  out.note('> Stopping nodes...');
  const pids = new Map(live.map((n) => [n, pidOf(n)!]));
  const waiting = new Set<MultiNode>();
  for (const node of live) {
    out.note(`\t> ${node.name}: ${signalName(sig)} -> ${pids.get(node)}`);
    if (send(node, sig, out)) waiting.add(node);
    else await down(node);
  }
  if (!wait) return;
  if (waiting.size) out.note(`> Waiting for ${waiting.size} ${waiting.size === 1 ? 'node' : 'nodes'} -> ${[...waiting].map((n) => pids.get(n)).join(', ')}...`, false);
  while (waiting.size) {
    for (const node of [...waiting]) {
      if (isAlive(pids.get(node)!)) continue;
      waiting.delete(node);
      out.note(`\n\t> ${node.name}: OK`);
      await down(node);
    }
    if (waiting.size) {
      out.note('.', false);
      await sleep(500);
    }
  }
  out.note('');
}

async function restart(nodes: MultiNode[], sig: NodeJS.Signals | number, out: Out): Promise<number> {
  let failed = 0;
  const again = async (node: MultiNode) => {
    out.note(`> Restarting node ${node.name}: `, false);
    const code = await startNode(node, out);
    out.note(code ? 'FAILED' : 'OK');
    if (code) failed = 1;
  };
  await stop(nodes, sig, out, true, again);
  // Nodes that were not running are started too, as Celery's restart does.
  for (const node of nodes) if (!pidOf(node)) await again(node);
  return failed;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
