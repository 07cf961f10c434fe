/**
 * A celeriac worker process with the OpenTelemetry SDK exporting to memory; when it shuts down
 * (SIGTERM) it writes its finished spans as JSON to $SPANS_FILE. Broker, backend and queue come
 * from the environment.
 */
import fs from 'node:fs';
import { setupTracing, spanRecord } from './setup.ts';

const exporter = setupTracing();
const { Celery, Worker, signals, createLogger } = await import('../../src/index.ts');
const app = new Celery('otel', { broker: process.env.OTEL_BROKER!, backend: process.env.OTEL_BACKEND });
const add = app.task('otel.add', (x: number, y: number) => x + y);
// Sends from inside its run: that publish is a child of this run's consumer span.
app.task('otel.relay', async (x: number) => (await add.applyAsync([x, 1], {}, { queue: process.env.OTEL_QUEUE })).id);
app.task('otel.fail', () => {
  throw new RangeError('out of range');
});
signals.workerShutdown.connect(() => fs.writeFileSync(process.env.SPANS_FILE!, JSON.stringify(exporter.getFinishedSpans().map(spanRecord))));
const worker = new Worker(app, { queues: [process.env.OTEL_QUEUE!], logger: createLogger({ level: 'INFO' }), withoutMingle: true, withoutGossip: true, withoutHeartbeat: true });
process.on('SIGTERM', () => void worker.shutdown().then(() => process.exit(worker.exitCode)));
await worker.start();
