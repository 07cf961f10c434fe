/**
 * Byte-for-byte re-encoding: every task envelope Python Celery wrote to Redis (redis-task-*.json)
 * is decoded, rebuilt with buildTaskMessage + toEnvelope from the decoded fields only, and must
 * come out as the very same string (json.dumps separators, ensure_ascii escapes, key order of
 * headers, properties and body). AMQP publishes are checked the same way for body bytes and
 * header values.
 *
 * Fields normalized before comparing, and why (nothing else is):
 * - `expiration` (ms until `expires`): Celery computes it from the clock at send time.
 * - `eta` / `expires` microseconds: a JS Date holds milliseconds; Python's `…21.136709+00:00`
 *   is expected back as `…21.136000+00:00` (a Python worker reads both).
 * - `argsrepr` / `kwargsrepr` of the fixtures listed in PYTHON_ONLY_REPR: they are repr() of
 *   Python objects that the JSON body no longer distinguishes.
 */
import { describe, expect, it } from 'vitest';
import { fromEnvelope, toEnvelope } from '../src/protocol/envelope.ts';
import type { Message } from '../src/protocol/message.ts';
import { buildTaskMessage, decodeTaskMessage, type TaskRequest } from '../src/protocol/task-message.ts';
import { expectedTaskRequest, findMessages, isoToMillis, listFixtures, loadFixture, wireMessage } from './helpers/fixtures.ts';

const PYTHON_ONLY_REPR: Record<string, string> = {
  // send_task(args=[1, 2]) passes a list, so argsrepr is the list repr "[1, 2]", not a tuple
  'redis-task-send-task.json': 'send_task passes args as a list',
  // datetime.datetime(…), UUID('…'), Decimal('1.10'), (1, 2): kombu turned them into strings/lists
  'redis-task-json-types.json': 'repr of Python datetime/UUID/Decimal/tuple objects',
  'amqp-task-json-types.json': 'repr of Python datetime/UUID/Decimal objects',
};

/** Header names as_task_v2 always writes; anything else was merged in from apply_async(headers=…). */
const STANDARD_HEADERS = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit',
  'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result',
]);

/** buildTaskMessage fed with nothing but what decodeTaskMessage returned (plus the message properties). */
function rebuild(t: TaskRequest, message: Message, priority: number | undefined): Message {
  const { correlation_id: _c, reply_to: _r, delivery_mode: _d, priority: _p, expiration: _e, ...extraProperties } = message.properties;
  return buildTaskMessage({
    id: t.id,
    name: t.name,
    args: t.args,
    kwargs: t.kwargs,
    embed: t.embed,
    eta: t.eta,
    expires: t.expires,
    retries: t.retries,
    timeLimit: t.timelimit[0],
    softTimeLimit: t.timelimit[1],
    rootId: t.rootId,
    parentId: t.parentId,
    group: t.group,
    groupIndex: t.groupIndex,
    shadow: t.shadow,
    origin: t.origin!,
    ignoreResult: t.ignoreResult,
    replyTo: t.replyTo!,
    priority,
    headers: Object.fromEntries(Object.entries(t.headers).filter(([k]) => !STANDARD_HEADERS.has(k))),
    properties: extraProperties,
  });
}

const STRING_TOKEN = '("(?:[^"\\\\]|\\\\.)*")';

/** Replace the JSON string token of `"key": "…"` (first occurrence) in serialized JSON. */
function setJsonToken(json: string, key: string, token: (old: string) => string): string {
  return json.replace(new RegExp(`("${key}": )${STRING_TOKEN}`), (_m, pre: string, old: string) => pre + token(old));
}

const getJsonToken = (json: string, key: string): string | undefined => new RegExp(`"${key}": ${STRING_TOKEN}`).exec(json)?.[1];

/** eta/expires at millisecond precision (ASCII-only, so JSON.stringify writes it as Python would). */
const millisToken = (token: string) => JSON.stringify(isoToMillis(JSON.parse(token)));

const redisTaskFixtures = listFixtures('redis-task-');

describe.each(redisTaskFixtures)('%s', (file) => {
  it('re-encodes to the captured envelope, byte for byte', () => {
    const fx = loadFixture(file);
    const envelopes = findMessages(fx).filter((f) => f.kind === 'envelope' && f.exact);
    if (envelopes.length === 0) {
      // nothing reached a list: an EncodeError (bytes) or a message Redis dropped silently
      expect(fx.error ?? fx.note, `${file} should say why it holds no message`).toBeTruthy();
      return;
    }
    for (const f of envelopes) {
      if (f.kind !== 'envelope') continue;
      const { message, delivery, deliveryTag } = fromEnvelope(f.raw);
      const expected = expectedTaskRequest(wireMessage(f));
      if (expected === 'invalid') {
        // `"task": null` (election winner without action): not a task celeriac can send or run
        expect(() => decodeTaskMessage(message)).toThrow(/"task" must be a task name string/);
        continue;
      }
      const t = decodeTaskMessage(message);
      if (t.protocol === 1) continue; // buildTaskMessage writes protocol 2; v1 is compared in protocol-v1.test.ts

      let out = toEnvelope(rebuild(t, message, delivery.priority), {
        exchange: delivery.exchange,
        routingKey: delivery.routingKey,
        deliveryTag: deliveryTag!,
      });
      let want = f.raw;
      for (const key of ['eta', 'expires']) want = setJsonToken(want, key, millisToken);
      const expiration = getJsonToken(want, 'expiration');
      if (expiration) out = setJsonToken(out, 'expiration', () => expiration);
      if (PYTHON_ONLY_REPR[file]) {
        for (const key of ['argsrepr', 'kwargsrepr']) out = setJsonToken(out, key, () => getJsonToken(want, key)!);
      }
      expect(out, `${file} ${f.where}`).toBe(want);
    }
  });
});

describe('normalizations above are needed, and only where stated', () => {
  it('argsrepr differs from Python exactly in the fixtures listed', () => {
    for (const file of Object.keys(PYTHON_ONLY_REPR)) {
      const [f] = findMessages(loadFixture(file));
      if (!f) throw new Error(`${file}: no message`);
      const message = f.kind === 'envelope' ? fromEnvelope(f.raw).message : f.message;
      const t = decodeTaskMessage(message);
      expect(rebuild(t, message, 0).headers.argsrepr, file).not.toBe(message.headers.argsrepr);
    }
  });

  it('body bytes alone need no normalization at all (json-types: unicode escapes, nested values)', () => {
    const [f] = findMessages(loadFixture('redis-task-json-types.json'));
    if (f?.kind !== 'envelope') throw new Error('no envelope');
    const { message } = fromEnvelope(f.raw);
    expect(rebuild(decodeTaskMessage(message), message, 0).body.toString('base64')).toBe(f.envelope.body);
    expect(message.body.toString()).toContain('"\\u00e9\\u2603"');
  });
});

describe.each(listFixtures('amqp-task-'))('%s', (file) => {
  it('rebuilds the AMQP body bytes and header values', () => {
    for (const f of findMessages(loadFixture(file))) {
      if (f.kind !== 'amqp' || typeof expectedTaskRequest(f.message) !== 'object') continue;
      const t = decodeTaskMessage(f.message);
      if (t.protocol === 1) continue;
      const built = rebuild(t, f.message, typeof f.message.properties.priority === 'number' ? f.message.properties.priority : 0);
      expect(built.body.equals(f.message.body), `${file} ${f.where}: body`).toBe(true);
      const headers = { ...f.message.headers };
      for (const key of ['eta', 'expires']) if (typeof headers[key] === 'string') headers[key] = isoToMillis(headers[key] as string);
      if (PYTHON_ONLY_REPR[file]) Object.assign(built.headers, { argsrepr: headers.argsrepr, kwargsrepr: headers.kwargsrepr });
      expect(built.headers, `${file} ${f.where}: headers`).toEqual(headers);
    }
  });
});
