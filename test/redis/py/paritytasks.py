"""Python Celery 5.2 side of test/redis/interop-parity.test.ts: the same task names as
test/redis/parityapp.ts, so that one scenario can run on a Python and on a celeriac worker.

Environment: CELERIAC_TEST_BROKER, CELERIAC_TEST_BACKEND, CELERIAC_TEST_PREFIX (global_keyprefix,
and the prefix of what errbacks record), CELERIAC_TEST_QUEUE (default queue, "py").
"""
import json
import os
import time

import redis
from celery import Celery, chain, group
from celery.exceptions import SoftTimeLimitExceeded

BROKER = os.environ['CELERIAC_TEST_BROKER']
PREFIX = os.environ.get('CELERIAC_TEST_PREFIX', '')

app = Celery('paritytasks', broker=BROKER, backend=os.environ.get('CELERIAC_TEST_BACKEND') or None)
app.conf.broker_transport_options = {'global_keyprefix': PREFIX}
app.conf.task_default_queue = os.environ.get('CELERIAC_TEST_QUEUE', 'py')

_redis = None


def note(tag, entry):
    """RPUSH <prefix>eb:<tag> json(entry): what an errback saw."""
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BROKER)
    _redis.rpush(PREFIX + 'eb:' + tag, json.dumps(entry))


# 1. Errbacks

@app.task(name='par.fail')
def fail(tag):
    raise ValueError('boom ' + tag)


@app.task(name='par.eb_args', ignore_result=True)
def eb_args(request, exc, traceback, tag, extra):
    note(tag, {'kind': 'args', 'id': request.id, 'exc': str(exc), 'tb': isinstance(traceback, str), 'extra': extra})


@app.task(name='par.eb_kw', ignore_result=True)
def eb_kw(request, exc, traceback, tag, extra='default'):
    note(tag, {'kind': 'kw', 'id': request.id, 'extra': extra})


@app.task(name='par.eb_own', ignore_result=True)
def eb_own(tag, a, b=None):
    note(tag, {'kind': 'own', 'a': a, 'b': b})


@app.task(name='par.eb_rest', ignore_result=True)
def eb_rest(*args):
    note(args[-1], {'kind': 'rest', 'n': len(args), 'id': args[0].id})


@app.task(name='par.eb_id', ignore_result=True)
def eb_id(task_id):
    note('ids', {'kind': 'id', 'task_id': task_id})


@app.task(name='par.eb_bound', bind=True, ignore_result=True)
def eb_bound(self, *args):
    note(args[-1], {'kind': 'bound', 'args': list(args)})


# 2. Keyword arguments by name

@app.task(name='par.add')
def add(x, y=1):
    return [x, y]


@app.task(name='par.add10')
def add10(x, y=10):
    return [x, y]


@app.task(name='par.badd', bind=True)
def badd(self, x, y):
    return [x, y]


# 3. Soft time limits (the limits come with the message)

@app.task(name='par.soft_handled')
def soft_handled():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return 'handled'
    return 'not stopped'


@app.task(name='par.soft_unhandled')
def soft_unhandled():
    time.sleep(5)
    return 'not stopped'


@app.task(name='par.soft_then_hard')
def soft_then_hard():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        time.sleep(5)
    return 'not stopped'


# 4. Result handles as results

@app.task(name='par.spawn_one')
def spawn_one():
    return add.apply_async((1, 2), queue=app.conf.task_default_queue)


@app.task(name='par.spawn_group')
def spawn_group():
    return group(add.s(1, 2), add.s(3)).apply_async(queue=app.conf.task_default_queue)


# 5. Celery's exception types

@app.task(name='par.retry_later', bind=True)
def retry_later(self, with_exc):
    if with_exc:
        raise self.retry(countdown=300, exc=KeyError('transient'))
    raise self.retry(countdown=300)


@app.task(name='par.replace_empty', bind=True)
def replace_empty(self):
    raise self.replace(chain())
