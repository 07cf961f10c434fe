/**
 * Celery's daemonization options (-D/--detach, -f/--logfile, --pidfile, --uid, --gid, --umask,
 * --executable) for the long-running commands (worker, beat, events). --workdir is global (load-app.ts).
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ConfigurationError } from '../errors.ts';
import { expandHostname } from '../worker/hostname.ts';
import { nodeFormat } from './nodenames.ts';
import { checkPidfileFree, createPidlock } from './pidfile.ts';

/** Where the command was started: the detached copy starts there too, and applies --workdir itself. */
const LAUNCH_CWD = process.cwd();

export interface DaemonOptions {
  detach?: boolean;
  logfile?: string;
  pidfile?: string;
  uid?: string;
  gid?: string;
  umask?: string;
  executable?: string;
  hostname?: string;
}

export interface Daemonized {
  write?: (line: string) => void;
  started: () => void;
}

export function addDaemonOptions(cmd: Command): Command {
  return cmd
    .option('-D, --detach', 'start as a background process (with --logfile and --pidfile)')
    .option('-f, --logfile <file>', 'log to this file instead of stderr; %n, %h, %d, %i, %I are expanded')
    .option('--pidfile <file>', 'write the process id to this file, removed at exit; refuses to start if it names a live process')
    .option('--uid <user>', 'user name or id to run as (needs root)')
    .option('--gid <group>', 'group name or id to run as (needs root)')
    .option('--umask <mask>', 'umask of the process (octal with a leading 0, e.g. 022)')
    .option('--executable <path>', 'with --detach: the Node executable to start (default: this one)');
}

/** The node name that %n/%h/%d expand against (the worker's -n, else celery@<host>). */
function nodename(opts: DaemonOptions): string {
  return expandHostname(opts.hostname ?? 'celery@%h');
}

/** A file option with the node's %n, %h, %d, %i, %I expanded, as Celery does for --logfile, --pidfile and --statedb. */
export function nodeFile(file: string | undefined, opts: DaemonOptions): string | undefined {
  return file ? path.resolve(nodeFormat(file, nodename(opts))) : undefined;
}

const expandedLogfile = (opts: DaemonOptions) => nodeFile(opts.logfile, opts);
const expandedPidfile = (opts: DaemonOptions) => nodeFile(opts.pidfile, opts);

function parseUmask(value: string): number {
  const octal = value.startsWith('0');
  const n = octal ? parseInt(value.replace(/^0o?/, '') || '0', 8) : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0o777) throw new ConfigurationError(`--umask must be a mask such as 022, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * -D/--detach: start this same command again in a new session, without -D, its output going to
 * the log file (or nowhere), and return once it has started: its pid file written and its modules
 * loaded (it says so on a pipe, `started()`), not yet connected, as a broker that is down only
 * delays a worker. Resolves with its pid; rejects when it exits before that.
 */
export function detach(opts: DaemonOptions, argv = process.argv): Promise<number> {
  const logfile = expandedLogfile(opts);
  const pidfile = expandedPidfile(opts);
  // Checked here, as Celery: the detached process has no terminal to say it.
  if (pidfile) checkPidfileFree(pidfile);
  let out: number | 'ignore' = 'ignore';
  if (logfile) {
    fs.mkdirSync(path.dirname(logfile), { recursive: true });
    out = fs.openSync(logfile, 'a');
  }
  const args = [...process.execArgv, ...argv.slice(1).filter((a) => a !== '-D' && a !== '--detach')];
  const child = spawn(opts.executable ?? process.execPath, args, {
    cwd: LAUNCH_CWD,
    detached: true,
    stdio: ['ignore', out, out, 'pipe'],
    env: { ...process.env, [STARTED_FD_ENV]: String(STARTED_FD) },
  });
  if (typeof out === 'number') fs.closeSync(out);
  const startedPipe = child.stdio[STARTED_FD] as Readable;
  return new Promise((resolve, reject) => {
    const where = logfile ? `; see ${logfile}` : ' (give it a --logfile to see why)';
    const timer = setTimeout(() => done(new ConfigurationError(`the detached process (pid ${child.pid}) did not finish starting within ${DETACH_TIMEOUT_MS / 1000} s${where}`)), DETACH_TIMEOUT_MS);
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.removeAllListeners();
      startedPipe.removeAllListeners();
      startedPipe.destroy();
      child.unref();
      if (err) reject(err);
      else resolve(child.pid!);
    };
    child.once('error', (err) => done(new ConfigurationError(`--detach: cannot start ${opts.executable ?? process.execPath}: ${err.message}`)));
    child.once('exit', (code, signal) => done(new ConfigurationError(`the detached process exited (${signal ?? `code ${code}`}) before it was running${where}`)));
    startedPipe.once('data', () => done());
  });
}

const STARTED_FD = 3;
const STARTED_FD_ENV = 'CELERIAC_DETACHED_STARTED_FD';

/** In a detached process: tell the command that started it that it runs (once; nothing otherwise). */
function reportStarted(): void {
  const fd = Number(process.env[STARTED_FD_ENV]);
  if (!Number.isInteger(fd)) return;
  delete process.env[STARTED_FD_ENV]; // not for the processes it starts
  try {
    fs.writeSync(fd, 'started\n');
    fs.closeSync(fd);
  } catch {
    /* the starting command is gone: nobody to tell */
  }
}

const DETACH_TIMEOUT_MS = 60_000;

/**
 * In the process that runs: umask, privileges, then the pid file. Returns where
 * log lines go: the log file (appended, synchronously so that none is lost at exit), or undefined;
 * and `started`, which the command calls once it has loaded what it runs (its detaching parent
 * returns then).
 */
export function applyDaemonOptions(opts: DaemonOptions): Daemonized {
  if (opts.umask !== undefined) process.umask(parseUmask(opts.umask));
  dropPrivileges(opts);
  const pidfile = expandedPidfile(opts);
  if (pidfile) createPidlock(pidfile);
  const logfile = expandedLogfile(opts);
  if (!logfile) return { started: reportStarted };
  fs.mkdirSync(path.dirname(logfile), { recursive: true });
  const fd = fs.openSync(logfile, 'a');
  return { write: (line: string) => void fs.writeSync(fd, line + '\n'), started: reportStarted };
}

/** Celery's maybe_drop_privileges: group first, then user (names or numeric ids). */
function dropPrivileges(opts: DaemonOptions): void {
  const id = (v: string) => (/^\d+$/.test(v) ? Number(v) : v);
  if (opts.gid === undefined && opts.uid === undefined) return;
  if (!process.setgid || !process.setuid) throw new ConfigurationError('--uid/--gid are not available on this platform');
  try {
    if (opts.gid !== undefined) process.setgid(id(opts.gid));
    if (opts.uid !== undefined) process.setuid(id(opts.uid));
  } catch (err) {
    throw new ConfigurationError(`--uid/--gid: ${(err as Error).message} (changing user or group needs root)`);
  }
}

/** -D/--detach: start the detached copy and exit; otherwise apply the options in this process. */
export async function daemonize(opts: DaemonOptions): Promise<Daemonized> {
  if (opts.detach === true) {
    await detach(opts);
    process.exit(0);
  }
  return applyDaemonOptions(opts);
}
