/**
 * argsrepr/kwargsrepr are cut at 1024 characters, and, as Celery's saferepr, built only that far:
 * a 5 MB argument (found by the chaos suite's burst of 5 MB messages, where each send spent seconds
 * in the repr) or a long list costs no more than a short one, and the text is the same.
 */
import { expect, it } from 'vitest';
import { argsRepr, pyRepr } from '../src/protocol/repr.ts';
import { buildTaskMessage } from '../src/protocol/task-message.ts';

it('a huge string argument gives the same cut argsrepr', () => {
  const big = 'x'.repeat(5 * 1024 * 1024);
  const message = buildTaskMessage({ id: 'i', name: 'tasks.big', args: ['a', 1, big], origin: 'o', replyTo: 'r' });
  expect(message.headers.argsrepr).toBe(`('a', 1, '${'x'.repeat(1021 - 10)}...`);
  expect(pyRepr({ k: big }, 20)).toBe(`{'k': 'xxxxxxxxxx...`);
  expect(argsRepr([["it's", null, true]])).toBe(`(["it's", None, True],)`);
});

it('reads only the part of the arguments it shows', () => {
  let reads = 0;
  const item = { get v() { reads++; return 'value'; } };
  const args = [Array.from({ length: 100_000 }, () => item)];
  const repr = argsRepr(args);
  expect(repr).toHaveLength(1024);
  expect(repr.startsWith(`([{'v': 'value'}, {'v': 'value'}`)).toBe(true);
  expect(reads).toBeLessThan(100);
  reads = 0;
  expect(pyRepr({ list: args[0] }, 50)).toBe(`{'list': [{'v': 'value'}, {'v': 'value'}, {'v':...`);
  expect(reads).toBeLessThan(10);
});
