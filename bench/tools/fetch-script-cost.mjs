#!/usr/bin/env node
// What the Redis transport's fetch and ack scripts cost Redis per message, on a redis-server of its own
// (a spare port, nothing else on it): N no-op task envelopes as celeriac publishes them, fetched BATCH at a
// time, each batch acknowledged either before the next fetch (the unacked index empties in between) or
// after it (fetches overlapping acks, as a worker that fetches ahead does). Redis' own time in the scripts
// comes from INFO commandstats (the fetch runs as EVALSHA, the ack as EVAL), divided by the messages.
// From the project's root after `npm run build`:   node bench/tools/fetch-script-cost.mjs [N=20000] [BATCH=200] [ROUNDS=3]
// FETCH_LUA=path runs another version of fetch.lua (e.g. from `git show <commit>:src/transport/redis/scripts/fetch.lua`);
// its reply may also be the former one, a row {queue index, tag, envelope} per message.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const N = Number(process.argv[2] ?? 20000);
const BATCH = Number(process.argv[3] ?? 200);
const ROUNDS = Number(process.argv[4] ?? 3);
const root = process.cwd();
const req = createRequire(path.join(root, 'package.json'));
const { Redis } = await import(pathToFileURL(req.resolve('ioredis')).href);
const { buildTaskMessage } = await import(pathToFileURL(path.join(root, 'dist/protocol/task-message.js')).href);
const { toEnvelope } = await import(pathToFileURL(path.join(root, 'dist/protocol/envelope.js')).href);
const script = (name) => fs.readFileSync(path.join(root, 'src/transport/redis/scripts', name), 'utf8');
const FETCH = process.env.FETCH_LUA ? fs.readFileSync(process.env.FETCH_LUA, 'utf8') : script('fetch.lua');
const ACK = script('ack.lua');

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
const r = new Redis({ port, lazyConnect: true });
for (let i = 0; ; i++) {
  try {
    await r.connect();
    break;
  } catch (err) {
    if (i > 50) throw err;
    await new Promise((res) => setTimeout(res, 100));
  }
}

const lists = ['celery', 'celery\x06\x163', 'celery\x06\x166', 'celery\x06\x169'];
const envelope = (i) => toEnvelope(buildTaskMessage({ id: `task-${i}`, name: 'drain.noop', args: [], origin: 'gen1@bench', replyTo: 'reply' }), { exchange: '', routingKey: 'celery', deliveryTag: `tag-${i}` });
try {
  const fetchSha = await r.script('LOAD', FETCH);
  const usec = async () => {
    const stats = await r.info('commandstats');
    const of = (cmd) => Number(new RegExp(`^cmdstat_${cmd}:calls=\\d+,usec=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
    return { fetch: of('evalsha'), ack: of('eval') };
  };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const overlapping of [false, true]) {
      await r.flushall();
      for (let i = 0; i < N; i += 1000) await r.lpush('celery', ...Array.from({ length: Math.min(1000, N - i) }, (_, j) => envelope(i + j)));
      const before = await usec();
      let taken = 0;
      let previous;
      const ack = (tags) => r.eval(ACK, 3, 'unacked', 'unacked_index', 'celeriac.holders', '0', ...tags);
      for (let f = 0; ; f++) {
        const id = `fetch${f}`;
        const reply = await r.evalsha(fetchSha, 4 + lists.length, 'unacked', 'unacked_index', `celeriac.fetch.${id}`, 'celeriac.holders', ...lists,
          BATCH, (Date.now() / 1000).toFixed(6), 1, '1', id, '', 32 * 1024 * 1024, 'celery');
        const rows = reply.length === 0 || Array.isArray(reply[0]);
        const count = rows ? reply.length : reply.length - 1;
        if (overlapping && previous) await ack(previous);
        if (count === 0) break;
        taken += count;
        const tags = Array.from({ length: count }, (_, i) => (rows ? reply[i][1] : `${id}-${i + 1}`));
        if (overlapping) previous = tags;
        else await ack(tags);
      }
      if (taken !== N) throw new Error(`fetched ${taken} of ${N}`);
      const after = await usec();
      const fetchUs = after.fetch - before.fetch;
      const ackUs = after.ack - before.ack;
      console.log(`round ${round} ${overlapping ? 'fetches overlapping acks' : 'acks before each fetch  '}  fetch ${(fetchUs / N).toFixed(2)} µs/message  ack ${(ackUs / N).toFixed(2)} µs/message`);
    }
  }
} finally {
  r.disconnect();
  server.kill();
}
