/**
 * The cluster behaviours (remote control, revokes, mingle, gossip, events, elections, statedb, rate
 * limits) against one broker: test/cluster-memory.test.ts runs them on the memory broker,
 * test/amqp/cluster.test.ts on RabbitMQ. `makeApp` gives each test an app on that broker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Celery, type CeleryConfig, TaskRevokedError, type Worker } from '../../src/index.ts';
import { receiveEvents } from '../../src/events/receiver.ts';
import type { CeleryEvent } from '../../src/events/event.ts';
import { startTestWorker } from '../../src/testing.ts';

export function clusterSuite(broker: string, createTestApp: (main: string, config?: CeleryConfig) => Celery): void {
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.shutdown()));
  });

  async function start(app: Celery, hostname: string, extra: Parameters<typeof startTestWorker>[1] = {}): Promise<Worker> {
    const w = await startTestWorker(app, { hostname, withoutMingle: true, heartbeatInterval: 0.2, ...extra });
    workers.push(w);
    return w;
  }

  function setup() {
    const app = createTestApp('cluster');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = app.task({ name: 'slow', bind: true }, async (self) => {
      await Promise.race([gate, new Promise((r) => self.signal.addEventListener('abort', r))]);
      return 'done';
    });
    return { app, slow, release };
  }

  describe(`cluster on the ${broker}`, () => {
    it('answers ping and inspect active from every worker', async () => {
      const { app, slow, release } = setup();
      await start(app, 'a@test');
      await start(app, 'b@test');
      const pongs = await app.control.ping({ timeout: 0.5 });
      expect(Object.assign({}, ...pongs)).toEqual({ 'a@test': { ok: 'pong' }, 'b@test': { ok: 'pong' } });
      const r = await slow.delay();
      await waitFor(async () => Object.values(await app.control.inspect({ timeout: 0.3 }).active()).flat().length === 1);
      const active = await app.control.inspect({ timeout: 0.3 }).active();
      const running = Object.values(active).flat() as Array<{ id: string; name: string; acknowledged: boolean }>;
      expect(running[0]).toMatchObject({ id: r.id, name: 'slow', acknowledged: true });
      release();
      expect(await r.get({ timeout: 5 })).toBe('done');
    });

    it('revoke with terminate stops a running task and stores REVOKED', async () => {
      const { app, slow } = setup();
      await start(app, 'a@test');
      const r = await slow.delay();
      await waitFor(async () => (await app.control.inspect({ timeout: 0.2 }).active())['a@test'] !== undefined && ((await app.control.inspect({ timeout: 0.2 }).active())['a@test'] as unknown[]).length === 1);
      await r.revoke({ terminate: true });
      await expect(r.get({ timeout: 5 })).rejects.toThrow(TaskRevokedError);
      expect(await r.state).toBe('REVOKED');
      expect(await r.result).toMatchObject({ exc_type: 'TaskRevokedError', exc_message: ['terminated'] });
    });

    it('mingle gives a new worker the revokes the cluster knows', async () => {
      const { app, slow } = setup();
      await start(app, 'a@test');
      const r = await slow.applyAsync([], {}, { countdown: 0.2, taskId: 'revoked-by-mingle' });
      await app.control.broadcast('revoke', { task_id: r.id }, { reply: false });
      await waitFor(async () => ((await app.control.inspect({ timeout: 0.2 }).revoked())['a@test'] as string[] | undefined)?.includes(r.id) ?? false);
      const b = await start(app, 'b@test', { withoutMingle: false, queues: ['other'] });
      expect(b.revoked.has(r.id)).toBe(true);
    });

    it('gossip sees a worker come and go; events carry Celery fields and the clocks advance', async () => {
      const { app } = setup();
      const a = await start(app, 'a@test');
      const seen: CeleryEvent[] = [];
      const sub = await receiveEvents((await app.transport()).broadcast!, (e) => seen.push(e));
      // A second app on the same broker: stopping its worker closes only its own connections.
      const b = await start(new Celery('cluster-b', { broker: app.conf.broker, backend: app.conf.backend }), 'b@test');
      await waitFor(async () => a.cluster!.gossip!.state.aliveWorkers().some((w) => w.hostname === 'b@test'));
      await b.shutdown();
      workers.splice(workers.indexOf(b), 1);
      await waitFor(async () => !a.cluster!.gossip!.state.workers.get('b@test')!.alive);
      const offline = seen.find((e) => e.type === 'worker-offline' && e.hostname === 'b@test');
      expect(offline).toMatchObject({ hostname: 'b@test', freq: 0.2, sw_ident: 'celeriac' });
      expect(Object.keys(offline!).slice(0, 4)).toEqual(['hostname', 'utcoffset', 'pid', 'clock']);
      const received = Math.max(...seen.filter((e) => e.hostname === 'b@test').map((e) => Number(e.clock)));
      expect(a.clock.value).toBeGreaterThan(received);
      await sub.close();
    });

    it('sends batched task events with -E', async () => {
      const app = createTestApp('events');
      const add = app.task('add', (x: number, y: number) => x + y);
      await start(app, 'e@test', { taskEvents: true });
      const seen: CeleryEvent[] = [];
      const sub = await receiveEvents((await app.transport()).broadcast!, (e) => seen.push(e));
      await (await add.delay(1, 2)).get({ timeout: 5 });
      await waitFor(async () => seen.some((e) => e.type === 'task-succeeded'));
      const types = seen.filter((e) => e.type.startsWith('task-')).map((e) => e.type);
      expect(types).toEqual(expect.arrayContaining(['task-received', 'task-started', 'task-succeeded']));
      expect(seen.find((e) => e.type === 'task-succeeded')).toMatchObject({ result: '3' });
      await sub.close();
    });
  });

  async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  describe('task-sent events', () => {
    it('a client with taskSendSentEvent announces each task it sends', async () => {
      const app = createTestApp('sent', { taskSendSentEvent: true });
      const add = app.task('add', (x: number, y: number) => x + y);
      const seen: CeleryEvent[] = [];
      const sub = await receiveEvents((await app.transport()).broadcast!, (e) => seen.push(e));
      const r = await add.applyAsync([2, 3], {}, { queue: 'sent-q' });
      await waitFor(async () => seen.some((e) => e.type === 'task-sent'));
      expect(seen.find((e) => e.type === 'task-sent')).toMatchObject({ uuid: r.id, name: 'add', args: '(2, 3)', kwargs: '{}', queue: 'sent-q', retries: 0 });
      await sub.close();
    });
  });

  describe('election', () => {
    it('exactly one worker wins and runs the elected task', async () => {
      const app = createTestApp('election');
      app.task('elected', () => null);
      const other = new Celery('election-b', { broker: app.conf.broker, backend: app.conf.backend });
      other.task('elected', () => null);
      const a = await start(app, 'ea@test', { queues: ['none-a'] });
      const b = await start(other, 'eb@test', { queues: ['none-b'] });
      await waitFor(async () => a.cluster!.gossip!.state.aliveWorkers().length === 1 && b.cluster!.gossip!.state.aliveWorkers().length === 1);
      const action = { task: 'elected', args: [], kwargs: {}, options: { queue: 'ballot' }, subtask_type: null, immutable: false };
      await app.control.broadcast('election', { id: 'e1', topic: 'task', action }, { reply: false });
      await waitFor(async () => (await (await app.transport()).size('ballot')) === 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(await (await app.transport()).size('ballot')).toBe(1);
    });
  });

  describe('--statedb', () => {
    it('keeps revoked ids and the clock across restarts', async () => {
      const fs = await import('node:fs');
      const os = await import('node:os');
      const path = await import('node:path');
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-statedb-')), 'worker.state');
      const app = createTestApp('statedb');
      const first = await startTestWorker(app, { hostname: 's@test', statedb: file, withoutMingle: true });
      first.revoked.add('gone-1');
      first.clock.adjust(41);
      await first.shutdown();
      const second = await startTestWorker(createTestApp('statedb2'), { hostname: 's@test', statedb: file, withoutMingle: true });
      workers.push(second);
      expect(second.revoked.has('gone-1')).toBe(true);
      expect(second.clock.value).toBeGreaterThan(42);
    });
  });

  describe('rate limits', () => {
    it('rate_limit by remote control spaces out a task; invalid strings are refused', async () => {
      const app = createTestApp('rates');
      const starts: number[] = [];
      const tick = app.task('tick', () => void starts.push(Date.now()));
      await start(app, 'r@test', { concurrency: 10 });
      const bad = await app.control.broadcast('rate_limit', { task_name: 'tick', rate_limit: 'fast' }, { timeout: 0.3 });
      expect(bad[0]!['r@test']).toEqual({ error: 'Invalid rate limit string: "fast"; use e.g. "10/s", "100/m" or "1000/h"' });
      const ok = await app.control.broadcast('rate_limit', { task_name: 'tick', rate_limit: '20/s' }, { timeout: 0.3 });
      expect(ok[0]!['r@test']).toEqual({ ok: 'new rate limit set successfully' });
      const results = await Promise.all(Array.from({ length: 6 }, () => tick.delay()));
      await Promise.all(results.map((r) => r.get({ timeout: 5 })));
      const span = Math.max(...starts) - Math.min(...starts);
      expect(span).toBeGreaterThanOrEqual(200); // 5 intervals of 50 ms after the first token
    });

    it('rejects a bad rateLimit task option at definition', () => {
      const app = createTestApp('rates2');
      expect(() => app.task({ name: 'x', rateLimit: '10/d' }, () => 1)).toThrow(/task "x": Invalid rate limit string: "10\/d"/);
    });
  });
}
