import { Celery } from '../src/index.ts';

/** The example app: no broker configured, so it uses the embedded SQLite default (./celeriac.db). */
export const app = new Celery('examples');

export const add = app.task('tasks.add', (x: number, y: number) => x + y);

export const mul = app.task('tasks.mul', async (x: number, y: number) => x * y);

export const slowSquare = app.task({ name: 'tasks.slow_square', trackStarted: true }, async (x: number) => {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return x * x;
});

export const divide = app.task('tasks.divide', (x: number, y: number) => {
  if (y === 0) throw new RangeError('division by zero');
  return x / y;
});

export const flaky = app.task({ name: 'tasks.flaky', bind: true, maxRetries: 3 }, async (self, attemptsNeeded: number) => {
  if (self.request.retries < attemptsNeeded) return self.retry({ countdown: 0.2 });
  return `succeeded after ${self.request.retries} retries`;
});
