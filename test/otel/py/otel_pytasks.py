"""Python Celery 5.2 side of test/otel/otel.test.ts (broker, backend and key prefix from the environment).

opentelemetry-instrumentation-celery reads the trace context of a task with
`getattr(task.request, key)` (its CeleryGetter) for the propagator's keys, `traceparent` and
`tracestate`: `otel.py_context` returns exactly what that getter would see.
"""
import os

from celery import Celery
from celery.signals import before_task_publish

app = Celery('otel_pytasks', broker=os.environ['OTEL_BROKER_BASE'], backend=os.environ['OTEL_BACKEND'])
app.conf.broker_transport_options = {'global_keyprefix': os.environ['OTEL_PREFIX']}


@app.task(name='otel.py_context', bind=True)
def py_context(self):
    return {key: getattr(self.request, key, None) for key in ('traceparent', 'tracestate')}


# What the instrumentation's before_task_publish receiver does to a message, with the default
# W3C propagator: `inject(headers)` sets headers['traceparent'] to
# "00-<trace id, 32 hex>-<span id of the producer span, 16 hex>-<flags, 2 hex>", and
# headers['tracestate'] only when the span has a trace state (opentelemetry-api's
# TraceContextTextMapPropagator.inject with the default dict setter).
INJECT = os.environ.get('OTEL_INJECT_TRACEPARENT')


@before_task_publish.connect
def inject_like_opentelemetry(sender=None, headers=None, **kwargs):
    if INJECT and headers is not None:
        headers['traceparent'] = INJECT
        headers['tracestate'] = 'py=1'
