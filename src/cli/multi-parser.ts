/**
 * `celeriac multi`'s command line, as Celery's (celery/apps/multi.py): node names or a count,
 * options for every node, and options for some (`-c:1 10`, `-Q:1-3 images`, `-c:foo,bar 5`).
 */
import os from 'node:os';
import path from 'node:path';
import { ConfigurationError } from '../errors.ts';
import { hostFormat, nodeFormat, nodeSplit } from './nodenames.ts';

type Options = Map<string, string | null>;

/** Celery's NamespacedOptionParser: `--long=value`, `-s value`, `-s:ns value`, names, and `--` passthrough. */
export class NamespacedOptionParser {
  readonly options: Options = new Map();
  readonly values: string[] = [];
  readonly namespaces = new Map<string, Options>();
  passthrough = '';

  constructor(readonly args: string[]) {
    const rargs = args.filter(Boolean);
    for (let pos = 0; pos < rargs.length; pos++) {
      const arg = rargs[pos]!;
      if (arg === '--') {
        this.passthrough = rargs.slice(pos).join(' ');
        break;
      } else if (arg.startsWith('--')) {
        const eq = arg.indexOf('=');
        this.add('--', eq < 0 ? arg.slice(2) : arg.slice(2, eq), eq < 0 ? null : arg.slice(eq + 1));
      } else if (arg.startsWith('-') && arg.length > 1) {
        let value: string | null = null;
        const next = rargs[pos + 1];
        if (next !== undefined && !next.startsWith('-')) {
          value = next;
          pos++;
        }
        this.add('-', arg.slice(1), value);
      } else {
        this.values.push(arg);
      }
    }
  }

  namespace(ns: string): Options {
    let opts = this.namespaces.get(ns);
    if (!opts) this.namespaces.set(ns, (opts = new Map()));
    return opts;
  }

  private add(prefix: string, name: string, value: string | null): void {
    const colon = name.indexOf(':');
    if (colon < 0) this.options.set(prefix + name, value);
    else this.namespace(name.slice(colon + 1)).set(prefix + name.slice(0, colon), value);
  }
}

export interface NodeCommand {
  /** The program and its first arguments, e.g. [node, bin/celeriac.js]. */
  executable: string;
  prefixArgs: string[];
}

/** One worker of the cluster: its node name, the command that starts it, its pid and log files. */
export class MultiNode {
  readonly options: Options;
  readonly argv: string[];
  readonly pidfile: string;
  readonly logfile: string;

  constructor(readonly name: string, options: Options, passthrough: string, readonly command: NodeCommand) {
    this.options = new Map(options);
    this.options.set('-n', name);
    this.pidfile = this.expand(this.defaultOpt(['--pidfile', '-p'], '%n.pid'));
    this.logfile = this.expand(this.defaultOpt(['--logfile', '-f'], '%n%I.log'));
    const opts = [...this.options].filter(([k]) => k !== '--executable').flatMap(([k, v]) => formatOpt(k, v === null ? null : this.expand(v)));
    this.argv = ['worker', '--detach', ...opts, ...(passthrough ? passthrough.split(' ').slice(1) : [])];
  }

  /** Celery's multi expander: %n short name, %h the node name, %d its host, %i/%I left for the worker. */
  expand(template: string): string {
    const [short, host] = nodeSplit(this.name);
    return nodeFormat(template, this.name, { N: short ?? '', d: host, h: this.name, i: '%i', I: '%I' });
  }

  get executable(): string {
    return this.options.get('--executable') ?? this.command.executable;
  }

  /** The whole command line, for `show`. */
  get commandLine(): string[] {
    return [this.executable, ...this.command.prefixArgs, ...this.argv];
  }

  /** Celery's _setdefaultopt: the option as given (under any of its names), else the default; made absolute. */
  private defaultOpt(alt: string[], value: string): string {
    const given = alt.find((opt) => this.options.get(opt));
    const file = path.resolve(given ? this.options.get(given)! : value);
    this.options.set(given ?? alt[0]!, file);
    return file;
  }
}

/** Celery's format_opt: `--long=value`, `-s value`, or the flag alone. */
function formatOpt(opt: string, value: string | null): string[] {
  if (!value) return [opt];
  return opt.startsWith('--') ? [`${opt}=${value}`] : [opt, value];
}

/** Celery's MultiParser: node names (or a count) with their merged options. */
export function parseNodes(p: NamespacedOptionParser, command: NodeCommand): MultiNode[] {
  let names = p.values;
  const options = new Map(p.options);
  const take = (k: string) => {
    const v = options.get(k);
    options.delete(k);
    return v ?? undefined;
  };
  const hostname = take('--hostname') ?? take('-n') ?? os.hostname();
  let prefix = take('--prefix') ?? '';
  let suffix = take('--suffix') ?? hostname;
  if (suffix === '""' || suffix === "''") suffix = '';
  const rangePrefix = take('--range-prefix') || 'celery';
  const ranges = names.length === 1;
  if (ranges && /^\d+$/.test(names[0]!)) {
    names = Array.from({ length: Number(names[0]) }, (_, i) => String(i + 1));
    prefix = rangePrefix;
  }
  if (names.length === 0) throw new ConfigurationError('celeriac multi: name the nodes (e.g. `start w1 w2`) or give their number (`start 3`)');
  // Numbers in namespaces are positions in the list of names (`-c:1` is the first node).
  for (const [ns, opts] of [...p.namespaces]) {
    if (!/^\d+$/.test(ns)) continue;
    if (Number(ns) < 1) throw new ConfigurationError(`celeriac multi: node indexes start at 1, got ${ns}`);
    const target = names[Number(ns) - 1];
    if (target === undefined) throw new ConfigurationError(`celeriac multi: no node at index ${ns}`);
    for (const [k, v] of opts) p.namespace(target).set(k, v);
  }
  for (const [ns, opts] of [...p.namespaces]) {
    if (!ns.includes(',') && !(ranges && ns.includes('-'))) continue;
    for (const sub of expandNamespace(ns, ranges)) for (const [k, v] of opts) p.namespace(sub).set(k, v);
    p.namespaces.delete(ns);
  }
  return names.map((name) => {
    const { short, nodename } = buildNodename(name, prefix, suffix);
    const ns = p.namespaces.has(nodename) ? nodename : short;
    const merged = new Map([...options, ...(p.namespaces.get(ns) ?? [])]);
    return new MultiNode(nodename, merged, p.passthrough, command);
  });
}

function buildNodename(name: string, prefix: string, suffix: string): { short: string; nodename: string } {
  if (name.includes('@')) {
    const nodename = hostFormat(name);
    return { short: nodeSplit(nodename)[0] ?? nodename, nodename };
  }
  return { short: name, nodename: hostFormat(`${prefix}${name}@${suffix}`) };
}

function expandNamespace(ns: string, ranges: boolean): string[] {
  return ns.split(',').flatMap((space) => {
    if (!ranges || !space.includes('-')) return [space];
    const [start, stop] = space.split('-').map(Number);
    if (!Number.isInteger(start) || !Number.isInteger(stop)) throw new ConfigurationError(`celeriac multi: bad node range ${JSON.stringify(space)}`);
    return Array.from({ length: stop! - start! + 1 }, (_, i) => String(start! + i));
  });
}
