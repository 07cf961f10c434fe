/**
 * The main job on the embedded default: start a worker process, send it tasks from this
 * process, print their results, stop the worker (warm shutdown).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TaskError } from '../src/index.ts';
import { add, app, divide, slowSquare, flaky, mul } from './tasks.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const worker = spawn(process.execPath, ['bin/celeriac.js', '-A', './examples/tasks.ts:app', 'worker', '-c', '4', '-l', 'WARNING'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});

try {
  const started = Date.now();
  const sum = await add.delay(2, 3);
  console.log(`tasks.add(2, 3)            -> ${await sum.get({ timeout: 30 })}`);
  const product = await mul.delay(6, 7);
  console.log(`tasks.mul(6, 7)            -> ${await product.get({ timeout: 10 })}`);
  const squares = await Promise.all([1, 2, 3, 4, 5].map((x) => slowSquare.delay(x)));
  console.log(`tasks.slow_square(1..5)    -> ${JSON.stringify(await Promise.all(squares.map((r) => r.get({ timeout: 10 }))))}`);
  const later = await add.applyAsync([40, 2], {}, { countdown: 1 });
  console.log(`tasks.add(40, 2) in 1 s    -> ${await later.get({ timeout: 10 })}`);
  const retried = await flaky.delay(2);
  console.log(`tasks.flaky(2)             -> ${await retried.get({ timeout: 10 })}`);
  try {
    await (await divide.delay(1, 0)).get({ timeout: 10 });
  } catch (err) {
    if (!(err instanceof TaskError)) throw err;
    console.log(`tasks.divide(1, 0)         -> raised ${err.excType}: ${err.message}`);
  }
  console.log(`done in ${Date.now() - started} ms`);
} finally {
  worker.kill('SIGTERM');
  await new Promise((resolve) => worker.once('exit', resolve));
  await app.close();
}
