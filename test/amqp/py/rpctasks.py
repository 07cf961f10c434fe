"""Python Celery 5.2 side of test/amqp/rpc-backend.test.ts: an app on the rpc:// result backend.

The broker (an AMQP URL on the test's own vhost) comes from the environment; tasks go to the
queue `CELERIAC_RPC_PY_QUEUE`.
"""
import os
import time

from celery import Celery

app = Celery('rpctasks', broker=os.environ['CELERIAC_TEST_BROKER'], backend='rpc://')
app.conf.task_default_queue = os.environ.get('CELERIAC_RPC_PY_QUEUE', 'rpc-py')
app.conf.task_track_started = True


@app.task(name='rpctasks.add')
def add(x, y):
    return x + y


@app.task(name='rpctasks.fail')
def fail(message):
    raise ValueError(message)


@app.task(name='rpctasks.slow')
def slow(seconds, value):
    time.sleep(seconds)
    return value
