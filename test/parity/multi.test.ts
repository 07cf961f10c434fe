/**
 * `celeriac multi` reads its command line as `celery multi` does: node names, ranges, per-node
 * options and %-abbreviations, compared with Python Celery 5.2's output for the same arguments.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hostFormat, nodeFormat } from '../../src/cli/nodenames.ts';
import { PYTHON } from '../helpers/python-worker.ts';
import { projectRoot } from '../integration/helpers.ts';

// Explicit files, so that Python's multi does not create /var/run/celery and /var/log/celery.
const FILES = ['--pidfile=/tmp/%n.pid', '--logfile=/tmp/%n%I.log'];

function celery(args: string[]): string {
  return execFileSync(PYTHON, ['-m', 'celery', 'multi', ...args, ...FILES], { encoding: 'utf8' });
}

function celeriac(args: string[]): string {
  return execFileSync(process.execPath, [path.join(projectRoot, 'bin', 'celeriac.js'), 'multi', ...args, ...FILES], { encoding: 'utf8' });
}

describe('celeriac multi parses its arguments as celery multi', () => {
  const cases: string[][] = [
    ['names', '3'],
    ['names', '3', '--range-prefix=worker'],
    ['names', 'image', 'video', 'data', '-n', 'h1.example.com'],
    ['names', 'foo', 'bar@%h', 'baz@example.com', '--suffix=x.org'],
    ['names', '2', '--prefix=p-', '--hostname=box'],
    ['expand', '%n|%h|%d|%i|%I|%p|%N', '2', '-n', 'box.example.com'],
    ['expand', '%n.pid', 'w1@a.b.c', 'w2'],
  ];
  for (const args of cases) {
    it(args.join(' '), () => {
      expect(celeriac(args)).toBe(celery(args));
    });
  }

  it('per-node options (-c:1-2, -Q:3, -c:foo,bar) go to the same nodes', () => {
    const options = (out: string) => out.replace(/ --executable=\S+/, '').replace(/^-m celery /, '').trim();
    for (const args of [
      ['get', 'celery1@box', '3', '-n', 'box', '-c', '3', '-c:1-2', '10', '-Q:3', 'q3', '-l', 'INFO'],
      ['get', 'celery3@box', '3', '-n', 'box', '-c', '3', '-c:1-2', '10', '-Q:3', 'q3', '-l', 'INFO'],
      ['get', 'bar@box', 'foo', 'bar', 'baz', '-n', 'box', '-c', '3', '-c:foo,bar', '5', '-E'],
      ['get', 'baz@box', 'foo', 'bar', 'baz', '-n', 'box', '-c', '3', '-c:foo,bar', '5', '-E'],
    ]) {
      expect(options(celeriac(args))).toBe(options(celery(args)));
    }
  });
});

describe("Celery's %-abbreviations", () => {
  it('node_format: %n, %h, %d, %p from the node name; %i and %I from the process index', () => {
    expect(nodeFormat('%n.pid', 'w1@box.example.com')).toBe('w1.pid');
    expect(nodeFormat('%n%I.log', 'w1@box.example.com')).toBe('w1.log');
    expect(nodeFormat('%n%I.log', 'w1@box.example.com', {}, 2)).toBe('w1-2.log');
    expect(nodeFormat('%h|%d|%p|%i', 'w1@box.example.com')).toBe('box.example.com|example.com|w1@box.example.com|0');
    expect(nodeFormat('%n.pid', 'box')).toBe('celery.pid');
    expect(hostFormat('%h/%n/%d', 'a.b.c')).toBe('a.b.c/a/b.c');
  });

  it('an unknown abbreviation is an error naming it', () => {
    expect(() => nodeFormat('%x.log', 'w1@box')).toThrow('unknown format %x in "%x.log"; use %h, %n, %d, %p, %i or %I');
  });
});
