/**
 * Celery's `%x` abbreviations in node names, pid files and log files (celery/utils/nodenames.py):
 *
 *   %h  host name (`celery@%h`: the machine's; in --pidfile/--logfile: the node's host part)
 *   %n  short name: the node's part before `@` (`w1` of `w1@box.example.com`)
 *   %d  domain (`example.com`)
 *   %p  the full node name
 *   %i  process index: 0 in the main process, N in pool child N
 *   %I  the same with a dash, empty in the main process (`%n%I.log` → `w1.log`, `w1-1.log`)
 */
import os from 'node:os';
import { ConfigurationError } from '../errors.ts';

export type FormatKeys = Record<string, string>;

/** Expand `%x` with `keys`; an unknown letter is an error naming the string (Celery's simple_format). */
export function simpleFormat(s: string, keys: FormatKeys): string {
  return s.replace(/%(\w)/g, (_, k: string) => {
    const v = keys[k];
    if (v === undefined) {
      throw new ConfigurationError(`unknown format %${k} in ${JSON.stringify(s)}; use %h, %n, %d, %p, %i or %I`);
    }
    return v;
  });
}

function processIndexKeys(index: number): FormatKeys {
  return { i: String(index), I: index ? `-${index}` : '' };
}

/** Celery's host_format: %h, %n and %d from a host name. */
export function hostFormat(s: string, host = os.hostname(), name?: string, extra: FormatKeys = {}, index = 0): string {
  const dot = host.indexOf('.');
  const hname = dot < 0 ? host : host.slice(0, dot);
  const domain = dot < 0 ? '' : host.slice(dot + 1);
  return simpleFormat(s, { h: host, n: name ?? hname, d: domain, ...processIndexKeys(index), ...extra });
}

/** Celery's nodesplit: `name@host` → [name, host]; no `@`: [undefined, host]. */
export function nodeSplit(nodename: string): [string | undefined, string] {
  const at = nodename.indexOf('@');
  return at < 0 ? [undefined, nodename] : [nodename.slice(0, at), nodename.slice(at + 1)];
}

/** Celery's node_format: expand a file name for the node `nodename` (e.g. `--pidfile=%n.pid`). */
export function nodeFormat(s: string, nodename: string, extra: FormatKeys = {}, index = 0): string {
  const [short, host] = nodeSplit(nodename);
  return hostFormat(s, host, short ?? 'celery', { p: nodename, ...extra }, index);
}
