/**
 * Exceptions in result metas (REFERENCE.md §4.2): `{"exc_type", "exc_message": [args…], "exc_module"}`,
 * checked against result-failure.json, result-revoked*.json and the other captured failures.
 */
import assert from 'node:assert';
import { describe, expect, it } from 'vitest';
import {
  CeleriacError, ConfigurationError, DecodeError, EncodeError, NotRegistered, Reject, TaskError, TaskRevokedError, TimeLimitExceeded,
} from '../src/errors.ts';
import { deserializeException, formatTraceback, serializeException } from '../src/protocol/exceptions.ts';
import { dumps, loads } from '../src/protocol/json.ts';
import { listFixtures, loadFixture } from './helpers/fixtures.ts';

/** ValueError('boom', 42) as a JS error: an `args` array gives exc_message, `module` the Python module. */
class PyLikeValueError extends Error {
  readonly args: unknown[];
  readonly module = 'builtins';
  constructor(...args: unknown[]) {
    super(String(args[0]));
    this.name = 'ValueError';
    this.args = args;
  }
}

describe('serializeException', () => {
  it('reproduces result-failure.json: ValueError("boom", 42) from builtins', () => {
    const meta = loadFixture('result-failure.json').final_decoded;
    expect(serializeException(new PyLikeValueError('boom', 42))).toEqual(meta.result);
    // and the bytes of that part of the stored meta
    expect(dumps(serializeException(new PyLikeValueError('boom', 42)))).toBe('{"exc_type": "ValueError", "exc_message": ["boom", 42], "exc_module": "builtins"}');
  });

  it.each([
    ['result-revoked.json', 'revoked'],
    ['result-revoked-terminated.json', 'terminated'],
  ])('reproduces %s with TaskRevokedError', (file, reason) => {
    expect(serializeException(new TaskRevokedError(reason))).toEqual(loadFixture(file).final_decoded.result);
  });

  it('TaskRevokedError("expired") and NotRegistered match the hand-made acceptance captures', () => {
    const { results } = loadFixture('redis-handmade-acceptance.json');
    expect(serializeException(new TaskRevokedError('expired'))).toEqual(results['expires-past'].result_meta.result);
    expect(serializeException(new NotRegistered('wiretasks.nope'))).toEqual(results['unknown-task'].result_meta.result);
  });

  it.each([
    [new Error('x'), 'Exception'],
    [new TypeError('x'), 'TypeError'],
    [new RangeError('x'), 'ValueError'],
    [new URIError('x'), 'ValueError'],
    [new SyntaxError('x'), 'SyntaxError'],
    [new ReferenceError('x'), 'NameError'],
    [new EvalError('x'), 'RuntimeError'],
    [new AggregateError([], 'x'), 'Exception'],
  ])('built-in %s → builtins.%s, exc_message [message]', (err, pyType) => {
    expect(serializeException(err)).toEqual({ exc_type: pyType, exc_message: ['x'], exc_module: 'builtins' });
  });

  it('node:assert AssertionError → builtins.AssertionError', () => {
    let err: unknown;
    try {
      assert.strictEqual(1, 2);
    } catch (e) {
      err = e;
    }
    expect(serializeException(err)).toMatchObject({ exc_type: 'AssertionError', exc_module: 'builtins' });
  });

  it('celeriac errors: Celery namesakes in celery.exceptions / kombu.exceptions, others in celeriac', () => {
    expect(serializeException(new TimeLimitExceeded('30'))).toEqual({ exc_type: 'TimeLimitExceeded', exc_message: ['30'], exc_module: 'billiard.exceptions' });
    expect(serializeException(new Reject('bad input', true))).toEqual({ exc_type: 'Reject', exc_message: ['bad input', true], exc_module: 'celery.exceptions' });
    expect(serializeException(new EncodeError('no bytes'))).toMatchObject({ exc_type: 'EncodeError', exc_module: 'kombu.exceptions' });
    expect(serializeException(new ConfigurationError('bad'))).toEqual({ exc_type: 'ConfigurationError', exc_message: ['bad'], exc_module: 'celeriac' });
    expect(serializeException(new CeleriacError('x')).exc_module).toBe('celeriac');
  });

  it('user errors: own name or class name, their own module if any, else null; subclasses of built-ins are not mapped', () => {
    class PaymentDeclined extends Error {}
    class Oops extends TypeError {}
    expect(serializeException(new PaymentDeclined('card'))).toEqual({ exc_type: 'PaymentDeclined', exc_message: ['card'], exc_module: null });
    expect(serializeException(new Oops('o'))).toEqual({ exc_type: 'Oops', exc_message: ['o'], exc_module: null });
    const named = Object.assign(new Error('n'), { name: 'QuotaError', module: 'billing.errors' });
    expect(serializeException(named)).toEqual({ exc_type: 'QuotaError', exc_message: ['n'], exc_module: 'billing.errors' });
    expect(serializeException(new Error('')).exc_message).toEqual([]);
  });

  it('a re-thrown remote TaskError is stored as the original exception', () => {
    const remote = new TaskError('KeyError', ['transient', 5], 'builtins', 'Traceback…');
    expect(serializeException(remote)).toEqual({ exc_type: 'KeyError', exc_message: ['transient', 5], exc_module: 'builtins' });
  });

  it('non-Error throws and unserializable args never make it throw', () => {
    expect(serializeException('oops')).toEqual({ exc_type: 'Exception', exc_message: ['oops'], exc_module: 'builtins' });
    expect(serializeException(undefined)).toEqual({ exc_type: 'Exception', exc_message: [undefined], exc_module: 'builtins' });
    const withBytes = Object.assign(new Error('b'), { args: [Buffer.from('x'), 1] });
    expect(() => dumps(serializeException(withBytes))).not.toThrow();
    expect(serializeException(withBytes).exc_message[1]).toBe(1);
  });
});

describe('formatTraceback', () => {
  it('Python layout: header, frames oldest first, "<Type>: <str(exc)>" last', () => {
    function inner() {
      return new RangeError('out of range');
    }
    function outer() {
      return inner();
    }
    const tb = formatTraceback(outer());
    const lines = tb.split('\n');
    expect(lines[0]).toBe('Traceback (most recent call last):');
    expect(tb.endsWith('\nValueError: out of range\n')).toBe(true);
    const frames = lines.filter((l) => l.startsWith('  at '));
    expect(frames.length).toBeGreaterThan(1);
    expect(frames.findIndex((l) => l.includes('outer'))).toBeLessThan(frames.findIndex((l) => l.includes('inner')));
  });

  it('several args print as a tuple; non-builtin modules are qualified, as Python prints them', () => {
    expect(formatTraceback(new PyLikeValueError('boom', 42))).toMatch(/\nValueError: \('boom', 42\)\n$/);
    expect(formatTraceback(new TaskRevokedError('terminated'))).toMatch(/\ncelery\.exceptions\.TaskRevokedError: terminated\n$/);
    expect(formatTraceback(new Error(''))).toMatch(/\nException\n$/);
    expect(formatTraceback('just a string')).toBe("Traceback (most recent call last):\nException: just a string\n");
  });

  it('a cause is printed first, joined by the "direct cause" sentence', () => {
    const tb = formatTraceback(new Error('outer', { cause: new TypeError('root cause') }));
    expect(tb).toMatch(/TypeError: root cause\n\nThe above exception was the direct cause of the following exception:\n\nTraceback \(most recent call last\):\n/);
    expect(tb.endsWith('Exception: outer\n')).toBe(true);
  });

  it('has the same last line as the captured Python traceback for the same exception', () => {
    const captured: string = loadFixture('result-failure.json').final_decoded.traceback;
    const last = (s: string) => s.trimEnd().split('\n').at(-1);
    expect(last(formatTraceback(new PyLikeValueError('boom', 42)))).toBe(last(captured));
  });
});

describe('deserializeException', () => {
  it('turns result-failure.json into a TaskError with type, args, module and traceback', () => {
    const fx = loadFixture('result-failure.json');
    const err = deserializeException(loads(fx.final_get.raw));
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ excType: 'ValueError', excMessage: ['boom', 42], excModule: 'builtins', taskId: fx.task_id, name: 'ValueError' });
    expect(err.traceback).toBe(fx.final_decoded.traceback);
  });

  it.each(['result-revoked.json', 'result-revoked-terminated.json'])('%s: TaskRevokedError, no traceback', (file) => {
    const meta = loadFixture(file).final_decoded;
    const err = deserializeException(meta);
    expect(err).toMatchObject({ excType: 'TaskRevokedError', excMessage: meta.result.exc_message, excModule: 'celery.exceptions', traceback: null });
  });

  it('every stored exception in the captures (FAILURE, RETRY, REVOKED) deserializes', () => {
    const metas = listFixtures('result-').map((f) => loadFixture(f).final_decoded).filter((m) => m && ['FAILURE', 'RETRY', 'REVOKED'].includes(m.status));
    expect(metas.length).toBeGreaterThanOrEqual(4);
    for (const m of metas) expect(deserializeException(m).excType).toBe(m.result.exc_type);
  });

  it('accepts the bare exception dict, a non-list exc_message, and round-trips serializeException', () => {
    expect(deserializeException({ exc_type: 'KeyError', exc_message: 'k', exc_module: 'builtins' }, 'tb', 'id1')).toMatchObject({
      excMessage: ['k'], traceback: 'tb', taskId: 'id1',
    });
    const back = deserializeException(serializeException(new RangeError('r')));
    expect([back.excType, back.excMessage, back.excModule]).toEqual(['ValueError', ['r'], 'builtins']);
  });

  it('refuses a meta without exc_type with a DecodeError', () => {
    expect(() => deserializeException({ status: 'FAILURE', result: 'boom' })).toThrow(DecodeError);
    expect(() => deserializeException({ exc_message: [] })).toThrow(/stored exception has no "exc_type"/);
  });
});
