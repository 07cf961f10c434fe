/**
 * Malformed input: every failure is a DecodeError that keeps what could not be decoded (`.raw`)
 * and says what is wrong. Based on the hand-built variants of REFERENCE.md §1.5
 * (redis-handmade-acceptance.json) plus a few more.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../src/errors.ts';
import { fromEnvelope } from '../src/protocol/envelope.ts';
import type { Message } from '../src/protocol/message.ts';
import { decodeBody, encodeBody } from '../src/protocol/serializers.ts';
import { decodeTaskMessage } from '../src/protocol/task-message.ts';
import { loadFixture } from './helpers/fixtures.ts';

const ID = '0d97945a-a07e-4a2a-9516-7dc30397183d';

function message(body: string, headers: Record<string, unknown> = { task: 'wiretasks.echo', id: ID }, contentType = 'application/json'): Message {
  return { headers, properties: {}, contentType, contentEncoding: 'utf-8', body: Buffer.from(body, 'utf8') };
}

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('envelope', () => {
  it('not JSON', () => {
    const err = decodeError(() => fromEnvelope('{"body": "W10=", '));
    expect(err.message).toMatch(/^message envelope is not valid JSON: /);
    expect(err.raw).toBe('{"body": "W10=", ');
  });

  it.each([['[1, 2]'], ['"x"'], ['null']])('JSON but not an object: %s', (raw) => {
    const err = decodeError(() => fromEnvelope(raw));
    expect(err.message).toBe('message envelope is not a JSON object');
    expect(err.raw).toBe(raw);
  });

  it('no body string', () => {
    const raw = '{"headers": {}, "properties": {}}';
    expect(decodeError(() => fromEnvelope(raw)).message).toBe('message envelope has no "body" string');
  });

  it('tolerates what a Python worker survives: no content-encoding, no priority, body not base64', () => {
    const { results } = loadFixture('redis-handmade-acceptance.json');
    for (const name of ['no-content-encoding', 'no-priority', 'body-not-base64', 'minimal-headers', 'minimal-everything']) {
      const t = decodeTaskMessage(fromEnvelope(JSON.stringify(results[name].sent_envelope)).message);
      expect(t.args, name).toEqual([name]);
    }
  });
});

describe('task body', () => {
  it('invalid JSON (hand-built "bad-json-body": a Python worker logs CRITICAL and drops it)', () => {
    const env = loadFixture('redis-handmade-acceptance.json').results['bad-json-body'].sent_envelope;
    const m = fromEnvelope(JSON.stringify(env)).message;
    const err = decodeError(() => decodeTaskMessage(m));
    expect(err.message).toMatch(/^message body is not valid JSON: /);
    expect(err.raw).toBe(m);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it('[args, kwargs] without embed is ACCEPTED with an empty embed (a Python 5.2 worker exits on it)', () => {
    const { results } = loadFixture('redis-handmade-acceptance.json');
    expect(results['no-embed'].worker_crashed).toBe(true);
    const t = decodeTaskMessage(fromEnvelope(JSON.stringify(results['no-embed'].sent_envelope)).message);
    expect(t).toMatchObject({ args: ['no-embed'], kwargs: {}, embed: { callbacks: null, errbacks: null, chain: null, chord: null } });
  });

  it.each([
    ['{"a": 1}', /task body must be a JSON array \[args, kwargs, embed\], got \{"a": 1\}/],
    ['[[1]]', /task body must be a JSON array \[args, kwargs, embed\], got \[\[1\]\]/],
    ['[[], {}, {}, 4]', /task body must be a JSON array/],
    ['["x", {}, {}]', /task args must be a JSON array, got "x"/],
    ['[{"a": 1}, {}, {}]', /task args must be a JSON array, got \{"a": 1\}/],
    ['[[], [], {}]', /task kwargs must be a JSON object, got \[\]/],
    ['[[], null, {}]', /task kwargs must be a JSON object, got null/],
  ])('%s', (body, msg) => {
    const m = message(body);
    const err = decodeError(() => decodeTaskMessage(m));
    expect(err.message).toMatch(msg);
    expect(err.raw).toBe(m);
  });

  it('a long bad value is shortened in the message', () => {
    const err = decodeError(() => decodeTaskMessage(message(`["${'x'.repeat(500)}", {}, {}]`)));
    expect(err.message.length).toBeLessThan(140);
  });
});

describe('task headers', () => {
  it('missing id', () => {
    expect(decodeError(() => decodeTaskMessage(message('[[], {}, {}]', { task: 'wiretasks.add' }))).message).toBe('task message has no "id" string');
  });

  it('id of the wrong type', () => {
    expect(decodeError(() => decodeTaskMessage(message('[[], {}, {}]', { task: 'wiretasks.add', id: 42 }))).message).toBe(
      'task message has no "id" string, got 42',
    );
  });

  it.each([['eta', 'tomorrow'], ['eta', '2024-02-30T00:00:00'], ['expires', 12], ['eta', '']])('bad %s %j', (field, value) => {
    const err = decodeError(() => decodeTaskMessage(message('[[], {}, {}]', { task: 'wiretasks.add', id: ID, [field]: value })));
    expect(err.message).toBe(`task header "${field}" is not an ISO-8601 date: ${JSON.stringify(value)}`);
  });

  it('accepts what a Python worker accepts: naive and "Z" eta (REFERENCE.md §1.5)', () => {
    const { results } = loadFixture('redis-handmade-acceptance.json');
    for (const name of ['eta-naive-string', 'eta-Z-suffix']) {
      const t = decodeTaskMessage(fromEnvelope(JSON.stringify(results[name].sent_envelope)).message);
      expect(t.eta?.toISOString(), name).toBe('2000-01-01T00:00:00.000Z');
    }
  });

  it('neither a task header nor a v1 body', () => {
    expect(decodeError(() => decodeTaskMessage(message('{"method": "ping"}', {}))).message).toMatch(/^not a Celery task message/);
  });

  it('protocol 1 body without id', () => {
    expect(decodeError(() => decodeTaskMessage(message('{"task": "wiretasks.add", "args": []}', {}))).message).toBe('task message has no "id" string');
  });
});

describe('content type', () => {
  it('a signed message (application/data, Celery\'s auth serializer) is refused where no security is set up', () => {
    const m = message('[[], {}, {}]', { task: 'wiretasks.add', id: ID }, 'application/data');
    expect(decodeError(() => decodeTaskMessage(m)).message).toMatch(/^the message is signed \(auth serializer\) but this app has no security set up to verify it/);
  });

  it.each(['application/x-python-serialize', 'application/x-yaml', ''])('%j is refused', (type) => {
    const m = message('[[], {}, {}]', { task: 'wiretasks.add', id: ID }, type);
    const err = decodeError(() => decodeTaskMessage(m));
    expect(err.message).toBe(`content type ${JSON.stringify(type)} is not supported (only application/json is accepted)`);
    expect(err.raw).toBe(m);
    expect(() => decodeBody(m)).toThrow(DecodeError);
  });

  it('unknown serializer on the way out is an EncodeError naming the supported ones', () => {
    expect(() => encodeBody([], 'pickle')).toThrow(/serializer "pickle" is not supported; use one of: json/);
  });
});
