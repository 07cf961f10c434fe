/**
 * The malformed-message mix: every category of bad input found so far, with good tasks
 * interleaved (one in ten). Every good task runs once; every bad message is dead-lettered (or, when
 * it is still a runnable task, runs); nothing is dropped silently and the worker keeps going.
 */
import { randomUUID } from 'node:crypto';
import type { Message } from '../../src/protocol/message.ts';
import { Harness } from '../lib/harness.ts';
import { sleep } from '../lib/harness.ts';
import type { Scenario } from './types.ts';

type Bad = { kind: 'message'; message: Message } | { kind: 'garbage'; text: string };

function taskMessage(id: string, body: string | Buffer, opts: { task?: string; contentType?: string; encoding?: string; headers?: Record<string, unknown> } = {}): Message {
  return {
    headers: { lang: 'py', task: opts.task ?? 'chaos.work', id, root_id: id, retries: 0, argsrepr: `('${id}', 0)`, kwargsrepr: '{}', ...opts.headers },
    properties: { correlation_id: id, priority: 0, delivery_mode: 2 },
    contentType: opts.contentType ?? 'application/json',
    contentEncoding: opts.encoding ?? 'utf-8',
    body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  };
}

const goodBody = (id: string) => JSON.stringify([[id, 0], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]);

/** The categories; those marked `mayRun` are still a runnable task and may run instead of being refused. */
export const CATEGORIES: { name: string; mayRun?: boolean; make(id: string): Bad }[] = [
  { name: 'not JSON', make: (id) => ({ kind: 'message', message: taskMessage(id, '{"not json') }) },
  { name: 'not [args, kwargs, embed]', make: (id) => ({ kind: 'message', message: taskMessage(id, '[1]') }) },
  { name: 'wrong content type', make: (id) => ({ kind: 'message', message: taskMessage(id, 'binary stuff', { contentType: 'application/x-python-serialize' }) }) },
  {
    name: 'invalid UTF-8',
    make: (id) => ({ kind: 'message', message: taskMessage(id, Buffer.concat([Buffer.from(`[["${id}\u00e9`), Buffer.from([0xff, 0xfe]), Buffer.from('", 0], {}, {}]')])) }),
  },
  { name: 'unknown compression', make: (id) => ({ kind: 'message', message: taskMessage(id, 'BZh9...', { headers: { compression: 'application/x-bz2' } }) }) },
  { name: 'not an envelope', make: (id) => ({ kind: 'garbage', text: `garbage ${id} {{{` }) },
  {
    name: 'embed.chain = [null]',
    mayRun: true,
    make: (id) => ({ kind: 'message', message: taskMessage(id, JSON.stringify([[id, 0], {}, { callbacks: null, errbacks: null, chain: [null], chord: null }])) }),
  },
  { name: 'unregistered task', make: (id) => ({ kind: 'message', message: taskMessage(id, goodBody(id), { task: 'chaos.no_such_task' }) }) },
  { name: 'huge argsrepr', mayRun: true, make: (id) => ({ kind: 'message', message: taskMessage(id, goodBody(id), { headers: { argsrepr: 'x'.repeat(100_000) } }) }) },
  {
    name: 'wrong header types',
    mayRun: true,
    make: (id) => ({ kind: 'message', message: taskMessage(id, goodBody(id), { headers: { retries: 'three', timelimit: 'soon', eta: 12, expires: [], root_id: 5, argsrepr: { a: 1 } } }) }),
  },
];

export const malformed: Scenario = {
  name: 'malformed',
  description: 'the malformed-message mix: 9 bad messages of the 10 categories for every good task, interleaved',
  brokers: ['sqlite', 'redis', 'amqp'],
  async run(broker, settings) {
    const total = settings.quick ? 500 : 10_000;
    const h = new Harness({ scenario: 'malformed', broker, acksLate: true, workers: 1, concurrency: 8, log: settings.log });
    try {
      await h.startWorkers();
      const transport = await h.app.transport();
      const badIds: { id: string; category: number }[] = [];
      const refused = new Map<string, number>();
      let next = 0;
      const lane = async () => {
        for (let i = next++; i < total; i = next++) {
          if (i % 10 === 0) {
            await h.send(1, 0);
            continue;
          }
          const category = (i - Math.floor(i / 10) - 1) % CATEGORIES.length;
          const id = randomUUID();
          const bad = CATEGORIES[category]!.make(id);
          try {
            if (bad.kind === 'garbage') await broker.pushGarbage(h.queue, bad.text);
            else await transport.publish(h.queue, bad.message);
            badIds.push({ id, category });
          } catch (err) {
            // Refused by the client with a clear error (e.g. headers over AMQP's 64 KB): never on the broker.
            refused.set((err as Error).message, (refused.get((err as Error).message) ?? 0) + 1);
          }
        }
      };
      await Promise.all(Array.from({ length: 20 }, lane));
      const last = await h.drain(30_000);
      // Dead letters are written after the good tasks may have run: wait until they stop coming.
      let dead = -1;
      for (let stable = 0; stable < 3; await sleep(1000)) {
        const now = await broker.deadLetters(h.queue);
        stable = now === dead ? stable + 1 : 0;
        dead = now;
      }
      const ran = new Set((await h.record.read()).map((e) => e.tag));
      const deadIds = await broker.deadLetterIds(h.queue);
      const ranBy = CATEGORIES.map((c, i) => (c.mayRun ? `${c.name} ${badIds.filter((b) => b.category === i && ran.has(b.id)).length}` : '')).filter(Boolean);
      const ranWrongly = badIds.filter((b) => !CATEGORIES[b.category]!.mayRun && ran.has(b.id)).length;
      const unaccounted = badIds.filter((b) => !ran.has(b.id) && !deadIds.has(b.id));
      const missing = [...new Set(unaccounted.map((b) => CATEGORIES[b.category]!.name))];
      for (const [why, n] of refused) h.notes.push(`${n} refused by the client: ${why}`);
      h.notes.push(`${badIds.length} bad on the broker: ${dead} dead-lettered, ran: ${ranBy.join(', ')}; ${ranWrongly} ran that must not, ${unaccounted.length} neither ran nor dead-lettered${missing.length ? ` (${missing.join(', ')})` : ''}`);
      const row = await h.finish(last);
      row.sent = total;
      row.lost += unaccounted.length;
      return [row];
    } finally {
      await h.close();
    }
  },
};
