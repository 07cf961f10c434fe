/**
 * A soak: a steady stream of short tasks for a while, the worker's RSS sampled every 250 ms. The
 * row's notes give the RSS of the first and the last tenth of the run: growth means a leak.
 */
import { Harness, sleep } from '../lib/harness.ts';
import type { Scenario } from './types.ts';

export const soak: Scenario = {
  name: 'soak',
  description: 'a steady 200 tasks/s (5 ms each) for 60 s (quick: 10 s) into one worker, RSS sampled',
  brokers: ['sqlite', 'redis', 'amqp'],
  async run(broker, settings) {
    const seconds = settings.quick ? 10 : 60;
    const perTick = 20; // every 100 ms
    const h = new Harness({ scenario: 'soak', broker, acksLate: true, workers: 1, concurrency: 20, log: settings.log });
    try {
      await h.startWorkers();
      const start = Date.now();
      while (Date.now() - start < seconds * 1000) {
        const tick = Date.now();
        await h.send(perTick, 5, undefined, perTick);
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
      const last = await h.drain(20_000);
      const samples = h.fleet.samples.filter((s) => s.at >= start && s.mb > 0);
      const tenth = Math.max(1, Math.floor(samples.length / 10));
      const avg = (xs: { mb: number }[]) => Math.round(xs.reduce((a, s) => a + s.mb, 0) / Math.max(1, xs.length));
      h.notes.push(`${Math.round(h.sentTags.length / seconds)} tasks/s for ${seconds} s; RSS first tenth ${avg(samples.slice(0, tenth))} MB, last tenth ${avg(samples.slice(-tenth))} MB`);
      return [await h.finish(last)];
    } finally {
      await h.close();
    }
  },
};
