/**
 * The client process of a Node system (one per client library and broker, started by
 * bench/systems/celeriac.ts and bench/systems/bullmq.ts): `node --import tsx
 * bench/agents/client.ts celeriac|bullmq`. It speaks the same JSON-lines protocol as
 * bench/py/agent.py (see bench/lib/rpc.ts) and does only client work: publishing, prefilling
 * and round trips. Workers are separate processes; drains are timed by the orchestrator.
 *
 * Commands:
 *   hello                                   versions
 *   publish {mode, seconds, max, inflight, chunk}
 *                                           send tasks for `seconds` (or `max` tasks) and count them:
 *                                           single = one awaited call after the other; concurrent =
 *                                           `inflight` calls outstanding at all times; bulk = BullMQ
 *                                           addBulk of `chunk` jobs per call (celeriac: n/a → null)
 *   prefill {n, stored, payload}            put n tasks on the queue (worker paused), as fast as possible;
 *                                           with payload: echo tasks of a `payload`-byte string
 *   send {stored}                           send one task, do not wait
 *   roundtrip {n, warmup}                   n sequential send-and-wait-for-result calls; ms each
 *   steady {seconds, warmup, backlog, inflight}
 *                                           publish continuously with `inflight` outstanding calls,
 *                                           pausing while more than `backlog` sent tasks are not yet
 *                                           executed; executions per second over `seconds`
 *   purge                                   empty the queue
 *   close                                   purge, disconnect, exit
 */
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { Redis } from 'ioredis';
import { COUNTER_KEY, REDIS_BROKER_URL, TASK_ECHO, TASK_IGNORED, TASK_STORED } from '../lib/config.ts';

type Handler = (args: Record<string, unknown>) => Promise<unknown>;

interface ClientOps {
  hello(): Promise<Record<string, string>>;
  /** Send one task; resolves once the broker has it. */
  send(stored: boolean): Promise<void>;
  /** Send the echo task with this argument (its result is stored). */
  sendEcho(value: string): Promise<void>;
  /** Send a batch in one call, or null when the library has no bulk API. */
  sendBulk: ((n: number) => Promise<void>) | null;
  /** Send and wait for the result. */
  call(): Promise<void>;
  /** After a round-trip phase: stop listening for results, so no listener costs CPU during later phases. */
  endCalls(): Promise<void>;
  purge(): Promise<void>;
  close(): Promise<void>;
}

const counterClient = new Redis(process.env.BENCH_COUNTER_URL ?? REDIS_BROKER_URL, { lazyConnect: true });
const executed = async (): Promise<number> => Number((await counterClient.get(COUNTER_KEY)) ?? 0);

async function celeriacOps(): Promise<ClientOps> {
  const { app, echo, noop, noopStored } = await import('../tasks.ts');
  const { VERSION } = await import('celeriac');
  const { QUEUE } = await import('../lib/config.ts');
  return {
    async hello() {
      return { node: process.version, celeriac: VERSION };
    },
    async send(stored) {
      await (stored ? noopStored.delay() : noop.delay());
    },
    async sendEcho(value) {
      await echo.delay(value);
    },
    sendBulk: null,
    async call() {
      await (await noopStored.delay()).get({ timeout: 30 });
    },
    // Each result's subscription ends with its get(): nothing stays listening.
    async endCalls() {},
    async purge() {
      await (await app.transport()).purge(QUEUE);
    },
    async close() {
      await app.close();
    },
  };
}

async function bullmqOps(): Promise<ClientOps> {
  const { Queue, QueueEvents } = await import('bullmq');
  const { createRequire } = await import('node:module');
  const { BULLMQ_PREFIX, QUEUE } = await import('../lib/config.ts');
  const connection = new Redis(REDIS_BROKER_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection, prefix: BULLMQ_PREFIX });
  let events: InstanceType<typeof QueueEvents> | undefined;
  const version = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;
  // Results ignored: the job is deleted when it completes. Stored: the job and its return value stay.
  const opts = (stored: boolean) => ({ removeOnComplete: !stored, removeOnFail: false });
  return {
    async hello() {
      return { node: process.version, bullmq: version };
    },
    async send(stored) {
      await queue.add(stored ? TASK_STORED : TASK_IGNORED, {}, opts(stored));
    },
    async sendEcho(value) {
      await queue.add(TASK_ECHO, { value }, opts(true));
    },
    async sendBulk(n) {
      await queue.addBulk(Array.from({ length: n }, () => ({ name: TASK_IGNORED, data: {}, opts: opts(false) })));
    },
    async call() {
      if (!events) {
        events = new QueueEvents(QUEUE, { connection: new Redis(REDIS_BROKER_URL, { maxRetriesPerRequest: null }), prefix: BULLMQ_PREFIX });
        await events.waitUntilReady();
      }
      const job = await queue.add(TASK_STORED, {}, opts(true));
      await job.waitUntilFinished(events, 30_000);
    },
    // A live QueueEvents reads every event of every later job (≈ 14 µs of client CPU per drained job
    // on this machine, competing with the worker for the two cores): it lives only for the round trips.
    async endCalls() {
      await events?.close();
      events = undefined;
    },
    async purge() {
      await queue.drain(true);
      await queue.clean(0, 1_000_000, 'completed');
    },
    async close() {
      await queue.obliterate({ force: true }).catch(() => undefined);
      await events?.close();
      await queue.close();
      connection.disconnect();
    },
  };
}

/** Run `inflight` loops of `step` until `stop()` says so; returns how many steps completed. */
async function loops(inflight: number, step: () => Promise<void>, stop: (done: number) => boolean): Promise<number> {
  let n = 0;
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (!stop(n)) {
        await step();
        n++;
      }
    }),
  );
  return n;
}

async function main(): Promise<void> {
  const kind = process.argv[2];
  const ops = kind === 'celeriac' ? await celeriacOps() : kind === 'bullmq' ? await bullmqOps() : null;
  if (!ops) throw new Error(`usage: client.ts celeriac|bullmq (got ${kind})`);

  const handlers: Record<string, Handler> = {
    hello: () => ops.hello(),
    purge: async () => {
      await ops.purge();
      return true;
    },
    send: async (a) => {
      await ops.send(Boolean(a.stored));
      return true;
    },
    publish: async (a) => {
      const mode = String(a.mode);
      const seconds = Number(a.seconds ?? 2);
      const max = Number(a.max ?? 100_000);
      const inflight = Number(a.inflight ?? 100);
      const chunk = Number(a.chunk ?? 1000);
      if (mode === 'bulk' && !ops.sendBulk) return null;
      await ops.send(false); // connect outside the measurement
      await ops.purge();
      const start = performance.now();
      const deadline = start + seconds * 1000;
      let count = 0;
      const stop = () => count >= max || performance.now() >= deadline;
      if (mode === 'single') {
        while (!stop()) {
          await ops.send(false);
          count++;
        }
      } else if (mode === 'concurrent') {
        count = await loops(inflight, () => ops.send(false), (done) => done >= max || performance.now() >= deadline);
      } else if (mode === 'bulk') {
        while (!stop()) {
          await ops.sendBulk!(chunk);
          count += chunk;
        }
      } else {
        throw new Error(`unknown publish mode ${mode}`);
      }
      const elapsed = (performance.now() - start) / 1000;
      await ops.purge();
      return { count, seconds: elapsed };
    },
    prefill: async (a) => {
      const n = Number(a.n);
      const stored = Boolean(a.stored);
      const payload = Number(a.payload ?? 0);
      const value = 'x'.repeat(payload);
      const start = performance.now();
      let sent = 0;
      await loops(100, async () => {
        sent++;
        await (payload ? ops.sendEcho(value) : ops.send(stored));
      }, () => sent >= n);
      return { seconds: (performance.now() - start) / 1000 };
    },
    roundtrip: async (a) => {
      const n = Number(a.n ?? 500);
      const warmup = Number(a.warmup ?? 20);
      const ms: number[] = [];
      for (let i = 0; i < warmup + n; i++) {
        const t = performance.now();
        await ops.call();
        if (i >= warmup) ms.push(performance.now() - t);
      }
      await ops.endCalls();
      return { ms };
    },
    steady: async (a) => {
      const seconds = Number(a.seconds ?? 3);
      const warmup = Number(a.warmup ?? 1);
      const backlog = Number(a.backlog ?? 2000);
      const inflight = Number(a.inflight ?? 100);
      const base = await executed();
      let published = 0;
      let done = 0;
      const start = performance.now();
      const from = start + warmup * 1000;
      const to = from + seconds * 1000;
      let c1: number | undefined;
      let t1 = 0;
      let c2 = 0;
      let t2 = 0;
      // One reader of the counter: marks the window and gates the publishers on the backlog.
      let finished = false;
      const reader = (async () => {
        while (!finished) {
          const now = performance.now();
          const c = (await executed()) - base;
          done = c;
          if (c1 === undefined && now >= from) [c1, t1] = [c, now];
          if (now >= to) {
            [c2, t2] = [c, now];
            finished = true;
            break;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await loops(inflight, async () => {
        while (published - done > backlog && !finished) await new Promise((r) => setTimeout(r, 1));
        if (finished) return;
        published++;
        await ops.send(false);
      }, () => finished);
      await reader;
      // Empty the queue and let the workers finish what they hold, so the next measurement starts clean.
      await ops.purge();
      const until = performance.now() + 30_000;
      let last = -1;
      let stableSince = performance.now();
      while (performance.now() < until && performance.now() - stableSince < 300) {
        const c = await executed();
        if (c !== last) [last, stableSince] = [c, performance.now()];
        await new Promise((r) => setTimeout(r, 20));
      }
      return { executed: c2 - (c1 ?? 0), seconds: (t2 - t1) / 1000, published };
    },
    close: async () => {
      await ops.purge().catch(() => undefined);
      await ops.close();
      counterClient.disconnect();
      return true;
    },
  };

  const write = (obj: unknown) => process.stdout.write(JSON.stringify(obj) + '\n');
  let closing = false;
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.trim()) return;
    const { id, op, ...args } = JSON.parse(line) as { id: number; op: string; [k: string]: unknown };
    const handler = handlers[op];
    if (!handler) return write({ id, ok: false, error: `unknown op ${op}` });
    handler(args).then(
      (result) => {
        write({ id, ok: true, result });
        if (op === 'close') {
          closing = true;
          process.exit(0);
        }
      },
      (err: Error) => write({ id, ok: false, error: err?.stack ?? String(err) }),
    );
  });
  rl.on('close', () => {
    if (closing) return;
    void handlers.close!({}).finally(() => process.exit(0));
  });
  const bye = () => void handlers.close!({}).finally(() => process.exit(1));
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
  write({ id: 0, ok: true, result: 'ready' });
}

await main();
