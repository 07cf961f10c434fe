"""Python Celery 5.2 side of test/redis/broadcast.test.ts and test/redis/interop-*.test.ts.

Everything comes from the environment so that each test keeps to its own Redis database and key
prefix: CELERIAC_TEST_BROKER, CELERIAC_TEST_BACKEND (optional), CELERIAC_TEST_PREFIX,
CELERIAC_TEST_VISIBILITY (seconds, optional), CELERIAC_TEST_QUEUE (default queue, "py").
Tasks record what they do in the broker database, under the prefix (see `record`).
"""
import logging
import os
import time

import redis
from celery import Celery, signals
from kombu import Exchange, Queue

BROKER = os.environ['CELERIAC_TEST_BROKER']
PREFIX = os.environ.get('CELERIAC_TEST_PREFIX', '')

app = Celery('ixtasks', broker=BROKER, backend=os.environ.get('CELERIAC_TEST_BACKEND') or None)
options = {'global_keyprefix': PREFIX}
if os.environ.get('CELERIAC_TEST_VISIBILITY'):
    options['visibility_timeout'] = float(os.environ['CELERIAC_TEST_VISIBILITY'])
app.conf.broker_transport_options = options
app.conf.task_default_queue = os.environ.get('CELERIAC_TEST_QUEUE', 'py')
# Queues bound to a direct exchange of another name under other routing keys (custom routing):
# ix.routed is consumed by Python workers, ix.js.routed by celeriac ones.
app.conf.task_queues = [
    Queue(app.conf.task_default_queue),
    Queue('ix.routed', Exchange('ix.exchange', type='direct'), routing_key='ix.key'),
    Queue('ix.js.routed', Exchange('ix.exchange', type='direct'), routing_key='ix.js.key'),
]



@signals.after_setup_logger.connect
def quiet_task_logs(**_):
    """With CELERIAC_TEST_QUIET_TASKS, no log line per task (the worker still logs "ready.")."""
    if os.environ.get('CELERIAC_TEST_QUIET_TASKS'):
        for name in ('celery.app.trace', 'celery.worker.strategy'):
            logging.getLogger(name).setLevel(logging.WARNING)


_redis = None


def rec():
    """A connection to the broker database, for the records tasks leave."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BROKER)
    return _redis


def request_info(request):
    info = request.delivery_info or {}
    return {
        'id': request.id,
        'retries': request.retries,
        'eta': request.eta,
        'expires': request.expires,
        'hostname': request.hostname,
        'exchange': info.get('exchange'),
        'routing_key': info.get('routing_key'),
        'priority': info.get('priority'),
    }


@app.task(name='ix.echo', bind=True)
def echo(self, *args, **kwargs):
    """Returns what it was given, with its request, and when it ran."""
    return {'args': list(args), 'kwargs': kwargs, 'request': request_info(self.request), 'ran_at': time.time(), 'by': 'py'}


@app.task(name='ix.retry', bind=True, max_retries=5)
def retry(self, times):
    """Retries itself `times` times (0.2 s apart), then returns the number of retries."""
    if self.request.retries < times:
        raise self.retry(countdown=0.2)
    return {'retries': self.request.retries, 'by': 'py'}


@app.task(name='ix.order', bind=True)
def order(self, tag):
    """Appends `tag` to the list <prefix>order (execution order)."""
    rec().rpush(PREFIX + 'order', tag)
    return tag


@app.task(name='ix.record', bind=True, ignore_result=True)
def record(self):
    """One run of a fleet task: HINCRBY <prefix>ran <id> 1, INCR <prefix>by:py."""
    pipe = rec().pipeline(transaction=False)
    pipe.hincrby(PREFIX + 'ran', self.request.id, 1)
    pipe.incr(PREFIX + 'by:py')
    pipe.execute()


@app.task(name='ix.slow', bind=True, acks_late=True, ignore_result=True)
def slow(self, tag, sleep_in):
    """acks_late: records <prefix>started:py / done:py (hash tag → count); sleeps 60 s when sleep_in == 'py'."""
    rec().hincrby(PREFIX + 'started:py', tag, 1)
    if sleep_in == 'py':
        time.sleep(60)
    rec().hincrby(PREFIX + 'done:py', tag, 1)
