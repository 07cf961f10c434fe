/**
 * Protocol 1 (REFERENCE.md §1.4): headers {}, everything in a body object. It must decode to the same
 * TaskRequest a protocol 2 message of the same call gives; a v1 chain is nested `options.link`
 * callbacks, kept as such (Celery's `hybrid_to_proto2` does the same).
 */
import { describe, expect, it } from 'vitest';
import { fromEnvelope } from '../src/protocol/envelope.ts';
import type { Message } from '../src/protocol/message.ts';
import { buildTaskMessage, decodeTaskMessage, type TaskRequest } from '../src/protocol/task-message.ts';
import { findMessages, loadFixture } from './helpers/fixtures.ts';

function firstMessage(file: string): Message {
  const f = findMessages(loadFixture(file))[0];
  if (!f) throw new Error(`${file}: no message`);
  return f.kind === 'envelope' ? fromEnvelope(f.raw).message : f.message;
}

/** The v2 message a client would have sent for the same call, decoded. */
function asV2(t: TaskRequest): TaskRequest {
  return decodeTaskMessage(
    buildTaskMessage({
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
      group: t.group,
      groupIndex: t.groupIndex,
      origin: 'gen1@host',
      replyTo: t.replyTo ?? '',
    }),
  );
}

const SAME_FIELDS = [
  'id', 'name', 'args', 'kwargs', 'embed', 'eta', 'expires', 'retries', 'timelimit', 'rootId', 'parentId',
  'group', 'groupIndex', 'shadow', 'ignoreResult', 'argsrepr', 'kwargsrepr', 'correlationId',
] as const;

const pick = (t: TaskRequest) => Object.fromEntries(SAME_FIELDS.map((k) => [k, t[k]]));

describe.each(['redis-task-protocol1-plain.json', 'redis-task-protocol1-chain.json', 'amqp-task-protocol1-plain.json'])('%s', (file) => {
  it('is a protocol 1 message (empty headers, body object)', () => {
    const m = firstMessage(file);
    expect(m.headers).toEqual({});
    const t = decodeTaskMessage(m);
    expect(t.protocol).toBe(1);
    expect(t.correlationId).toBe(t.id);
  });

  it('decodes to the same TaskRequest fields as protocol 2', () => {
    const t = decodeTaskMessage(firstMessage(file));
    expect(pick(t)).toEqual(pick(asV2(t)));
  });
});

describe('protocol 1 against the protocol 2 capture of the same call', () => {
  it('add.apply_async((2, 3)): same fields as redis-task-plain.json, ids and reply_to aside', () => {
    const v1 = decodeTaskMessage(firstMessage('redis-task-protocol1-plain.json'));
    const v2 = decodeTaskMessage(firstMessage('redis-task-plain.json'));
    const strip = (t: TaskRequest) => ({ ...pick(t), id: undefined, rootId: undefined, correlationId: undefined });
    expect(strip(v1)).toEqual(strip(v2));
    expect(v1.rootId).toBe(v1.id); // a v2 client writes root_id = own id for a first task
    expect(v1.argsrepr).toBe('(2, 3)');
  });

  it('chain(add.s(1,2), add.s(3), mul.s(4)): the rest of the chain is a link callback carrying its own link', () => {
    const v1 = decodeTaskMessage(firstMessage('redis-task-protocol1-chain.json'));
    expect(v1.args).toEqual([1, 2]);
    expect(v1.embed.chain).toBeNull();
    const [next] = v1.embed.callbacks!;
    expect(next).toMatchObject({ task: 'wiretasks.add', args: [3] });
    const link = next!.options.link as Array<{ task: string; args: unknown[] }>;
    expect(link.map((s) => [s.task, s.args])).toEqual([['wiretasks.mul', [4]]]);

    // the same chain in protocol 2 lists the same two tasks in embed.chain, reversed
    const v2 = decodeTaskMessage(firstMessage('redis-task-chain.json'));
    expect(v2.embed.chain!.map((s) => s.task).reverse()).toEqual([next!.task, link[0]!.task]);
  });

  it('a hand-built v1 body with only task/id/args/kwargs (accepted by a Python worker) decodes', () => {
    const results = loadFixture('redis-handmade-acceptance.json').results;
    const r = results['protocol1-body'];
    const t = decodeTaskMessage(fromEnvelope(JSON.stringify(r.sent_envelope)).message);
    expect(t).toMatchObject({ protocol: 1, id: r.task_id, name: 'wiretasks.echo', args: ['protocol1-body'], kwargs: {}, retries: 0, eta: null });
    expect(r.result_meta.status).toBe('SUCCESS');
  });
});
