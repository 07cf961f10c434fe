/**
 * Prints the traceparent header a publish carries: `node --import tsx publish-headers.ts [sdk]`,
 * with the OpenTelemetry SDK set up only when asked (the API alone is always installed here).
 */
import { context, trace } from '@opentelemetry/api';
import { setupTracing } from './setup.ts';

if (process.argv[2] === 'sdk') setupTracing();
const { Celery, signals } = await import('../../src/index.ts');
const app = new Celery('headers', { broker: 'memory://headers' });
let traceparent: unknown = null;
signals.beforeTaskPublish.connect(({ headers }) => void (traceparent = headers.traceparent ?? null));
const span = trace.getTracer('client').startSpan('client');
await context.with(trace.setSpan(context.active(), span), () => app.sendTask('headers.none'));
span.end();
await app.close();
console.log(JSON.stringify({ traceparent }));
