/**
 * The entry of a worker pool child, started by bin/pool-child.js as a process or as a thread: it
 * loads the app as the CLI does (-A) and hands it to the pool's child loop.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { runChild } from '../worker/pool/child.ts';
import type { ChildInit, FromChild, ToChild } from '../worker/pool/messages.ts';
import { loadApp } from './load-app.ts';

if (isMainThread) {
  // The parent gone (killed, crashed): nothing would ever read this child's results.
  process.on('disconnect', () => process.exit(0));
  // Ctrl-C reaches the whole process group: the parent decides (warm shutdown lets running tasks finish), as Celery's children ignore SIGINT.
  process.on('SIGINT', () => {});
  await runChild(JSON.parse(process.env.CELERIAC_POOL_CHILD ?? '{}') as ChildInit, {
    send: (msg: FromChild) => process.send!(msg),
    onMessage: (fn) => process.on('message', (msg) => fn(msg as ToChild)),
    exit: (code) => process.exit(code),
  }, loadApp);
} else {
  await runChild(workerData as ChildInit, {
    send: (msg: FromChild) => parentPort!.postMessage(msg),
    onMessage: (fn) => parentPort!.on('message', fn),
    exit: (code) => process.exit(code),
  }, loadApp);
}
