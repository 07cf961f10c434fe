/**
 * Wire form of signatures and canvases: celeriac's `toJSON()` against Celery 5.2's own dicts
 * (py/canvas_dicts.py, run with the system Python), and the messages celeriac publishes for
 * link / chain / group / chord against the captured Python messages (redis-task-*.json),
 * generated ids aside.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValueBackend } from '../../src/backend/key-value-backend.ts';
import {
  type AnySignature, Celery, Chain, Chord, chain, chord, Group, GroupResult, group, Signature, signature,
} from '../../src/index.ts';
import type { SignatureDict } from '../../src/protocol/task-message.ts';
import { createTestApp } from '../../src/testing.ts';
import { loadFixture } from '../helpers/fixtures.ts';
import { drain, normalizeIds, pythonCanvasDicts } from './helpers.ts';

const dictsApp = new Celery('dicts', { broker: 'memory://canvas-dicts', backend: 'memory://canvas-dicts' });
const add = dictsApp.task('tasks.add', (x: number, y: number) => x + y);
const mul = dictsApp.task('tasks.mul', (x: number, y: number) => x * y);
const xsum = dictsApp.task('tasks.xsum', (values: number[]) => values.reduce((a, b) => a + b, 0));
const echo = dictsApp.task('tasks.echo', (...args: unknown[]) => args);
const double = dictsApp.task('tasks.double', (x: number) => 2 * x);

function linked(): AnySignature {
  const s = add.s(2, 3);
  s.link(mul.s(10));
  s.linkError(echo.si('errback'));
  return s;
}

/** The same canvases as py/canvas_dicts.py, built with celeriac. */
const CASES: Record<string, () => AnySignature> = {
  sig: () => add.s(2, 3),
  si: () => echo.si('x'),
  options: () => add.s(2).set({ countdown: 10, queue: 'q', priority: 5 }),
  link: linked,
  chain: () => chain(add.s(1, 2), add.s(3), mul.s(4)),
  pipe: () => add.s(1, 2).pipe(add.s(3)).pipe(mul.s(4)),
  group: () => group(add.s(1, 1), add.s(2, 2)),
  chord: () => chord([add.s(1, 1), add.s(2, 2)], xsum.s()),
  'group-then-task': () => chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()),
  'group-of-chains': () => group(chain(add.s(1, 1), mul.s(2)), chain(add.s(2, 2), mul.s(3))),
  'chord-in-chain': () => chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(2)),
  'nested-3': () => chord([group(chain(add.s(1, 1), mul.s(2)), add.s(3, 3)), add.s(4, 4)], xsum.s().pipe(double.s())),
  'chord-pipe': () => chord([add.s(1, 1)], xsum.s()).pipe(double.s()),
  map: () => double.map([1, 2, 3]),
  starmap: () => add.starmap([[1, 2], [3, 4]]),
  chunks: () => add.chunks([[1, 2], [3, 4], [5, 6]], 2),
};

/**
 * Frozen forms that differ from Celery 5.2 on purpose: Celery freezes a chord header given as a
 * list without flattening its nested groups (their members then share group_index values with
 * the outer members); celeriac flattens them in order with group_index 0..n-1.
 */
const FROZEN_DIFFERS = new Set(['nested-3:frozen']);

const uuids = (v: unknown) => new Set(JSON.stringify(v).match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g));

let python: Record<string, unknown>;
beforeAll(() => {
  python = pythonCanvasDicts();
});
afterAll(() => dictsApp.close());

describe('signatures serialise to Celery’s dict form', () => {
  for (const name of Object.keys(CASES)) {
    it(`${name}: same dict as Celery builds`, () => {
      expect(normalizeIds(CASES[name]!().toJSON())).toEqual(normalizeIds(python[name]));
    });
    it(`${name}: same frozen dict (every id set, places in the workflow)`, () => {
      const sig = CASES[name]!();
      sig.freeze();
      const ours = normalizeIds(sig.toJSON());
      if (FROZEN_DIFFERS.has(`${name}:frozen`)) expect(ours).not.toEqual(normalizeIds(python[`${name}:frozen`]));
      else expect(ours).toEqual(normalizeIds(python[`${name}:frozen`]));
    });
    it(`${name}: Signature.fromDict(Celery's dict) gives the same type and dict back`, () => {
      const d = python[name] as SignatureDict;
      const sig = Signature.fromDict(structuredClone(d), dictsApp);
      expect(sig.subtaskType).toBe(d.subtask_type);
      expect(sig.toJSON()).toEqual(d);
      // Frozen: a chord's header group becomes a list again (as Celery's from_dict does); every id is kept.
      const frozen = python[`${name}:frozen`] as SignatureDict;
      const back = Signature.fromDict(structuredClone(frozen), dictsApp).toJSON();
      expect(uuids(back)).toEqual(uuids(frozen));
    });
  }

  it('rebuilds the primitive classes from subtask_type', () => {
    expect(Signature.fromDict(python.chain as SignatureDict)).toBeInstanceOf(Chain);
    expect(Signature.fromDict(python.group as SignatureDict)).toBeInstanceOf(Group);
    expect(Signature.fromDict(python.chord as SignatureDict)).toBeInstanceOf(Chord);
    const upgraded = Signature.fromDict(python['group-then-task'] as SignatureDict) as Chain;
    expect(upgraded.tasks[1]).toBeInstanceOf(Chord);
  });

  it('signature(name, args, kwargs, options) takes camelCase or snake_case options', () => {
    const s = signature('tasks.add', [1], { y: 2 }, { taskId: 'abc', linkError: echo.si('x'), routing_key: 'rk', countdown: 3 });
    expect(s.toJSON()).toEqual({
      task: 'tasks.add', args: [1], kwargs: { y: 2 }, subtask_type: null, immutable: false,
      options: { task_id: 'abc', link_error: echo.si('x').toJSON(), routing_key: 'rk', countdown: 3 },
    });
  });

  it('clone puts partial args in front of the stored ones, merges kwargs and options, and copies', () => {
    const s = add.s(2).set({ queue: 'a' });
    const c = s.clone([1], { z: 3 }, { priority: 7 });
    expect(c.toJSON()).toMatchObject({ args: [1, 2], kwargs: { z: 3 }, options: { queue: 'a', priority: 7 } });
    expect(s.toJSON()).toMatchObject({ args: [2], kwargs: {}, options: { queue: 'a' } });
    expect(add.si(2, 5).clone([1]).args).toEqual([2, 5]); // immutable: partial args ignored
  });

  it('link and linkError append (once) and return the argument; onError returns the signature', () => {
    const s = add.s(1, 1);
    const cb = mul.s(2);
    expect(s.link(cb)).toBe(cb);
    s.link(mul.s(2));
    expect(s.onError(echo.s())).toBe(s);
    expect(s.toJSON().options).toEqual({ link: [mul.s(2).toJSON()], link_error: [echo.s().toJSON()] });
  });
});

describe('published messages match the Python captures', () => {
  const app = createTestApp('wire');
  const padd = app.task('wiretasks.add', (x: number, y: number) => x + y);
  const pmul = app.task('wiretasks.mul', (x: number, y: number) => x * y);
  const pxsum = app.task('wiretasks.xsum', (v: number[]) => v.length);
  const pecho = app.task('wiretasks.echo', (...a: unknown[]) => a);
  afterAll(() => app.close());

  /** The fixture's messages, decoded (headers + body), in list order (newest first on Redis). */
  const captured = (name: string) =>
    (loadFixture(name).messages as { envelope: { headers: Record<string, unknown> }; body_decoded_json: unknown }[]).map((m) => ({ headers: m.envelope.headers, body: m.body_decoded_json }));
  const VARYING = ['id', 'root_id', 'origin'];
  const stable = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => !VARYING.includes(k)));

  it('link / link_error: identical body, same headers', async () => {
    await padd.applyAsync([2, 3], {}, { link: pmul.s(10).toJSON(), linkError: pecho.si('errback').toJSON() });
    const [sent] = await drain(app);
    const [py] = captured('redis-task-link');
    expect(sent!.body).toEqual(py!.body);
    expect(stable(sent!.headers)).toEqual(stable(py!.headers));
  });

  it('chain(a, b, c): only a is published, embed.chain = [c, b]; the result is c', async () => {
    const r = await chain(padd.s(1, 2), padd.s(3), pmul.s(4)).applyAsync();
    const sent = await drain(app);
    expect(sent).toHaveLength(1);
    const [py] = captured('redis-task-chain');
    expect(normalizeIds(sent[0]!.body)).toEqual(normalizeIds(py!.body));
    expect(stable(sent[0]!.headers)).toEqual(stable(py!.headers));
    expect(sent[0]!.headers.root_id).toBe(sent[0]!.headers.id);
    const embed = (sent[0]!.body as [unknown, unknown, { chain: SignatureDict[] }])[2];
    expect(embed.chain[0]!.options.reply_to).toBe(app.oid);
    expect(r.id).toBe(embed.chain[0]!.options.task_id);
    expect(r.parent?.id).toBe(embed.chain[1]!.options.task_id);
    expect(r.parent?.parent?.id).toBe(sent[0]!.headers.id);
  });

  it('group: one message per task, same group id, group_index null; returns a GroupResult', async () => {
    const r = await group([0, 1, 2].map((i) => padd.s(i, i))).applyAsync();
    const sent = await drain(app);
    const py = captured('redis-task-group').reverse();
    expect(sent.map((s) => s.body)).toEqual(py.map((p) => p.body));
    expect(sent.map((s) => stable({ ...s.headers, group: null }))).toEqual(py.map((p) => stable({ ...p.headers, group: null })));
    expect(new Set(sent.map((s) => s.headers.group))).toEqual(new Set([r.id]));
    expect(sent.every((s) => s.headers.group_index === null)).toBe(true);
    expect(r).toBeInstanceOf(GroupResult);
    expect(r.results.map((x) => x.id)).toEqual(sent.map((s) => s.headers.id));
  });

  it('chord: header with group_index 0..n-1 and embed.chord = body; chord size set; the result is the body', async () => {
    const r = await chord([0, 1, 2].map((i) => padd.s(i, i)), pxsum.s()).applyAsync();
    const sent = await drain(app);
    const py = captured('redis-task-chord').reverse();
    expect(sent.map((s) => normalizeIds(s.body))).toEqual(py.map((p) => normalizeIds(p.body)));
    const gid = sent[0]!.headers.group as string;
    expect(sent.map((s) => [s.headers.group, s.headers.group_index])).toEqual([[gid, 0], [gid, 1], [gid, 2]]);
    expect(sent.map((s) => stable({ ...s.headers, group: null }))).toEqual(py.map((p) => stable({ ...p.headers, group: null })));
    const body = (sent[0]!.body as [unknown, unknown, { chord: SignatureDict }])[2].chord;
    expect(r.id).toBe(body.options.task_id);
    expect((r.parent as GroupResult).id).toBe(gid);
    const backend = (await app.backend()) as KeyValueBackend;
    expect(await backend.store.get(`celery-taskset-meta-${gid}.s`)).toBe('3');
  });
});
