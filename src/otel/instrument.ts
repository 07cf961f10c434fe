/**
 * OpenTelemetry traces of task messages, as Python's opentelemetry-instrumentation-celery makes
 * them, so one trace crosses Python and celeriac: a PRODUCER span `apply_async/<task>` around each
 * publish, whose context goes in the message headers through the global propagator (W3C
 * `traceparent`/`tracestate` at the top level of the headers, where a Celery worker reads them as
 * `task.request.traceparent`), and a CONSUMER span `run/<task>` around each run, child of the
 * context found in the headers (or, for an eager run, of the caller's active span).
 */
import type * as Api from '@opentelemetry/api';
import { aroundRun } from '../app/hooks.ts';
import { signals } from '../app/signals.ts';
import type { TraceOutcome } from '../app/trace.ts';
import { VERSION } from '../version.ts';

type Attributes = Record<string, string | number | boolean | undefined>;

/** Header values as a propagator expects them: a string, or a list from a repeated header. */
const getter: Api.TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key];
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
    return undefined;
  },
};

const setter: Api.TextMapSetter<Record<string, unknown>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export interface Instrumentation {
  /** Disconnect the receivers and stop wrapping runs. */
  uninstrument(): void;
}

export function instrument(api: typeof Api): Instrumentation {
  const tracer = api.trace.getTracer('celeriac', VERSION);
  // The API is often installed by a dependency with no SDK set up: then nothing is done per task.
  const noop = new api.ProxyTracerProvider().getDelegate();
  const tracing = (): boolean => {
    const provider = api.trace.getTracerProvider();
    return !(provider instanceof api.ProxyTracerProvider) || provider.getDelegate() !== noop;
  };
  // The span of a publish between the two signals, by the headers object they share.
  const publishing = new WeakMap<object, Api.Span>();

  const beforePublish = signals.beforeTaskPublish.connect(function openTelemetryBeforePublish({ sender, headers, routingKey, properties }) {
    if (!tracing()) return;
    const span = tracer.startSpan(`apply_async/${sender}`, {
      kind: api.SpanKind.PRODUCER,
      attributes: clean({
        ...messaging('send', 'apply_async', routingKey, headers.id, properties.correlation_id),
        'celery.action': 'apply_async',
        'celery.task_name': sender,
        'celery.hostname': str(headers.origin),
        'celery.retries': typeof headers.retries === 'number' && headers.retries > 0 ? headers.retries : undefined,
        'celery.eta': str(headers.eta),
        'celery.expires': str(headers.expires),
      }),
    });
    publishing.set(headers, span);
    api.propagation.inject(api.trace.setSpan(api.context.active(), span), headers, setter);
  });
  const afterPublish = signals.afterTaskPublish.connect(function openTelemetryAfterPublish({ headers }) {
    publishing.get(headers)?.end();
    publishing.delete(headers);
  });

  aroundRun.provide((task, req, env, run) => {
    if (!tracing()) return run();
    const parent = api.propagation.extract(api.context.active(), req.headers, getter);
    const span = tracer.startSpan(
      `run/${task.name}`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: clean({
          ...messaging('process', 'run', env.deliveryInfo?.routingKey ?? env.queue ?? undefined, req.id, req.correlationId),
          'celery.action': 'run',
          'celery.task_name': task.name,
          'celery.hostname': env.hostname,
          'celery.retries': req.retries > 0 ? req.retries : undefined,
        }),
      },
      parent,
    );
    return api.context.with(api.trace.setSpan(parent, span), async () => {
      try {
        const outcome = await run();
        if (span.isRecording()) record(api, span, outcome);
        return outcome;
      } finally {
        span.end();
      }
    });
  });

  return {
    uninstrument() {
      signals.beforeTaskPublish.disconnect(beforePublish);
      signals.afterTaskPublish.disconnect(afterPublish);
      aroundRun.provide((_task, _req, _env, run) => run());
    },
  };
}

/** OpenTelemetry's messaging conventions (messaging.*), with Celery as the system. */
function messaging(type: 'send' | 'process', name: string, destination: string | undefined, id: unknown, conversation: unknown): Attributes {
  return {
    'messaging.system': 'celery',
    'messaging.operation.type': type,
    'messaging.operation.name': name,
    'messaging.destination.name': destination,
    'messaging.message.id': str(id),
    'messaging.message.conversation_id': str(conversation),
  };
}

function record(api: typeof Api, span: Api.Span, outcome: TraceOutcome): void {
  span.setAttribute('celery.state', outcome.state);
  if (outcome.state === 'FAILURE') {
    const error = outcome.error;
    if (error instanceof Error) span.recordException(error);
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  } else if (outcome.state === 'RETRY') {
    span.setAttribute('celery.retry.reason', String(outcome.error instanceof Error ? outcome.error.message : outcome.error));
  } else if (outcome.state === 'REVOKED') {
    span.setAttribute('celery.revoked.reason', outcome.reason);
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function clean(attrs: Attributes): Api.Attributes {
  const out: Api.Attributes = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = v;
  return out;
}
