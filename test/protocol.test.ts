/**
 * Golden decoding tests against every message captured from Python Celery 5.2
 * (test/fixtures/celery-wire, REFERENCE.md §1). The fixture folder is iterated: a new capture is covered
 * without touching this file.
 *
 * - task messages (v2 and v1; Redis envelopes, AMQP frames, hand-built ones): decoded with
 *   fromEnvelope + decodeTaskMessage and compared field by field with values read straight off
 *   the wire (helpers/fixtures.ts: expectedTaskRequest);
 * - events, pidbox requests/replies: the body parses with `loads`, re-serializes to the same bytes,
 *   and is not mistaken for a task;
 * - result metas: `loads` gives the captured value and `dumps` gives the captured bytes back.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../src/errors.ts';
import { fromEnvelope } from '../src/protocol/envelope.ts';
import { dumps, loads } from '../src/protocol/json.ts';
import type { Message } from '../src/protocol/message.ts';
import { decodeTaskMessage, type TaskRequest } from '../src/protocol/task-message.ts';
import {
  expectedTaskRequest,
  findMessages,
  integralFloatsAsInts,
  listFixtures,
  loadFixture,
  type FoundMessage,
  wireMessage,
} from './helpers/fixtures.ts';

const all = listFixtures();

function open(found: FoundMessage): Message {
  if (found.kind === 'amqp') return found.message;
  const { message, delivery, deliveryTag } = fromEnvelope(found.raw);
  const info = found.envelope.properties.delivery_info;
  expect(deliveryTag).toBe(found.envelope.properties.delivery_tag);
  if (info) expect({ exchange: delivery.exchange, routingKey: delivery.routingKey }).toEqual({ exchange: info.exchange, routingKey: info.routing_key });
  expect(delivery.priority).toBe(found.envelope.properties.priority);
  return message;
}

describe('fixture folder', () => {
  it('holds every category of capture', () => {
    for (const prefix of ['redis-task-', 'amqp-task-', 'result-', 'event-', 'pidbox-']) {
      expect(all.filter((f) => f.startsWith(prefix)).length, `fixtures starting with ${prefix}`).toBeGreaterThan(0);
    }
  });
});

describe.each(all)('%s', (file) => {
  const found = findMessages(loadFixture(file));

  it('decodes every message in it as Python Celery meant it', () => {
    let tasks = 0;
    for (const f of found) {
      const where = `${file} ${f.where}`;
      const expected = expectedTaskRequest(wireMessage(f));
      const message = open(f);
      if (expected === 'not-a-task') {
        const text = message.body.toString('utf8');
        const body = loads(text);
        expect(body, where).not.toBeNull();
        checkNonTaskBody(body, message, where);
        // byte-for-byte: kombu's json.dumps output comes back out of dumps(loads(…))
        expect(dumps(body), where).toBe(integralFloatsAsInts(text));
        expect(() => decodeTaskMessage(message), where).toThrow(/not a Celery task message/);
        continue;
      }
      if (expected === 'invalid') {
        expect(() => decodeTaskMessage(message), where).toThrow(DecodeError);
        continue;
      }
      tasks++;
      const decoded = decodeTaskMessage(message);
      expect(decoded, where).toMatchObject(expected);
      expect(decoded.headers, `${where}: custom headers kept`).toEqual(expected.headers);
      expect(dumps(JSON.parse(message.body.toString('utf8'))), `${where}: body bytes`).toBe(message.body.toString('utf8'));
    }
    if (/^(redis|amqp)-task-/.test(file) && found.length > 0) expect(tasks + found.filter(isNullTask).length, file).toBeGreaterThan(0);
  });

  if (file.startsWith('result-')) {
    it('result metas parse to the captured value and serialize back to the same bytes', () => {
      const fx = loadFixture(file);
      const raws: Array<[string | null, unknown]> = [[fx.final_get.raw, fx.final_decoded]];
      for (const m of fx.members ?? []) raws.push([m.get.raw, m.decoded]);
      for (const [raw, decoded] of raws) {
        if (raw === null) {
          expect(decoded, 'no key at all: PENDING').toBeNull();
          continue;
        }
        expect(loads(raw)).toEqual(decoded);
        expect(dumps(loads(raw))).toBe(integralFloatsAsInts(raw));
      }
    });
  }
});

function isNullTask(f: FoundMessage): boolean {
  return expectedTaskRequest(wireMessage(f)) === 'invalid';
}

/** Minimal shape of the non-task messages: events, pidbox requests and replies. */
function checkNonTaskBody(body: unknown, message: Message, where: string): void {
  const h = message.headers;
  if (typeof h.hostname === 'string') {
    // event, or a batch of them (task.multi)
    for (const ev of Array.isArray(body) ? body : [body]) {
      expect(ev, where).toMatchObject({ hostname: expect.any(String), type: expect.any(String), timestamp: expect.any(Number) });
    }
  } else if (typeof h.ticket === 'string') {
    // pidbox reply: {"<node>": <handler result>}
    expect(Object.keys(body as object).every((k) => k.includes('@')), where).toBe(true);
  } else {
    expect(body, where).toMatchObject({ method: expect.any(String), arguments: expect.any(Object) });
  }
}

// -------------------------------------------------------------------------------------------------
// Spot checks: values known from the capture notes (REFERENCE.md §1.2), written out by hand so that a
// bug shared by the decoder and the generic expectation above cannot go unnoticed.

function decodeAll(file: string): TaskRequest[] {
  return findMessages(loadFixture(file))
    .filter((f) => (f.kind === 'amqp' || f.exact) && typeof expectedTaskRequest(wireMessage(f)) === 'object')
    .map((f) => decodeTaskMessage(open(f)));
}

describe('semantics spelled out', () => {
  it('timelimit is [hard, soft]; shadow, ignore_result and custom headers come through', () => {
    for (const file of ['redis-task-options.json', 'amqp-task-options.json']) {
      const [t] = decodeAll(file);
      expect(t).toMatchObject({ timelimit: [30, 20], shadow: 'shadow-name', ignoreResult: true });
      expect(t!.headers).toMatchObject({ 'x-custom': 'v', n: 1 });
    }
    const [amqp] = decodeAll('amqp-task-options.json');
    expect(amqp!.headers).toMatchObject({ big: 2 ** 40, f: 1.5, lst: [1, 'a', null] });
  });

  it('a chain embeds the remaining tasks reversed (the worker pops from the end)', () => {
    for (const file of ['redis-task-chain.json', 'amqp-task-chain.json']) {
      const [t] = decodeAll(file);
      expect(t!.args).toEqual([1, 2]);
      expect(t!.embed.chain!.map((s) => [s.task, s.args])).toEqual([['wiretasks.mul', [4]], ['wiretasks.add', [3]]]);
      expect(t!.embed.chain![0]!.options).toHaveProperty('task_id');
    }
    const [next] = decodeAll('redis-task-worker-chain-continuation.json');
    expect(next!.embed.chain!.map((s) => s.task)).toEqual(['wiretasks.mul']);
    expect(next!.parentId).toBe(next!.rootId);
  });

  it('group members carry group_index null, chord headers 0..n-1 and the body in embed.chord', () => {
    const group = decodeAll('redis-task-group.json');
    expect(new Set(group.map((t) => t.group)).size).toBe(1);
    expect(group.map((t) => t.groupIndex)).toEqual([null, null, null]);
    const chord = decodeAll('redis-task-chord.json');
    expect(chord.map((t) => t.groupIndex).sort()).toEqual([0, 1, 2]);
    expect(chord.every((t) => t.embed.chord?.task === 'wiretasks.xsum' && t.group === chord[0]!.group)).toBe(true);
    const [body] = decodeAll('redis-task-worker-chord-callback.json');
    expect(body!.args).toEqual([[0, 2, 4]]);
  });

  it('link / link_error become embed callbacks / errbacks', () => {
    const [t] = decodeAll('redis-task-link.json');
    expect(t!.embed.callbacks).toEqual([{ task: 'wiretasks.mul', args: [10], kwargs: {}, options: {}, subtask_type: null, immutable: false }]);
    expect(t!.embed.errbacks![0]).toMatchObject({ task: 'wiretasks.echo', args: ['errback'], immutable: true });
    const [cb] = decodeAll('redis-task-worker-link-callback.json');
    expect(cb!.args).toEqual([5, 10]); // parent result prepended
  });

  it('eta and expires are absolute instants; countdown was converted by the client', () => {
    expect(decodeAll('redis-task-eta.json')[0]!.eta!.toISOString()).toBe('2030-01-02T03:04:05.678Z');
    expect(decodeAll('redis-task-countdown.json')[0]!.eta!.toISOString()).toBe('2026-11-25T04:51:21.136Z');
    expect(decodeAll('redis-task-expires-datetime.json')[0]!.expires!.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(decodeAll('amqp-task-eta.json')[0]!.eta).toBeInstanceOf(Date);
  });

  it('a retry keeps its id, bumps retries and is its own parent', () => {
    const [t] = decodeAll('redis-task-worker-retry-republished.json');
    expect(t).toMatchObject({ retries: 1, parentId: t!.id, rootId: t!.id, args: [5] });
    expect(t!.eta).toBeInstanceOf(Date);
  });

  it('kwargs, kwargsrepr and JSON-typed arguments (dates stay strings in kombu 5.2)', () => {
    expect(decodeAll('redis-task-delay-kwargs.json')[0]).toMatchObject({ args: [2], kwargs: { y: 3 }, argsrepr: '(2,)', kwargsrepr: "{'y': 3}" });
    const [t] = decodeAll('redis-task-json-types.json');
    expect(t!.args.slice(0, 3)).toEqual(['2024-05-06T07:08:09.123456Z', '2024-05-06T07:08:09', '2024-05-06T00:00:00']);
    expect(t!.args[7]).toEqual({ nested: [null, true, 1.5, 'é☃'] });
    expect(t!.kwargs).toEqual({ tz: '2024-05-06T07:08:09+02:00' });
  });

  it('a task message whose "task" header is null is refused with a clear error', () => {
    const [f] = findMessages(loadFixture('redis-task-worker-election-winner-none-task.json'));
    const err = catchError(() => decodeTaskMessage(open(f!)));
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.message).toMatch(/"task" must be a task name string, got null/);
  });

  it('hand-built messages a Python worker accepted decode too; the one it could not parse is a DecodeError', () => {
    const results = loadFixture('redis-handmade-acceptance.json').results as Record<string, { task_id: string; sent_envelope: object }>;
    for (const [name, r] of Object.entries(results)) {
      const decode = () => decodeTaskMessage(fromEnvelope(JSON.stringify(r.sent_envelope)).message);
      if (name === 'bad-json-body') expect(decode, name).toThrow(/body is not valid JSON/);
      else expect(decode().id, name).toBe(r.task_id);
    }
    expect(decodeTaskMessage(fromEnvelope(JSON.stringify(results['no-embed']!.sent_envelope)).message).embed).toEqual({
      callbacks: null, errbacks: null, chain: null, chord: null,
    });
  });
});

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}
