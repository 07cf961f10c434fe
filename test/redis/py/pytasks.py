"""Python Celery 5.2 side of test/redis/interop.test.ts.

Broker, result backend and key prefix come from the environment, so that the test keeps to its
own Redis databases; visibility_timeout=2 lets a worker restore an abandoned delivery quickly.
"""
import os

from celery import Celery

app = Celery('pytasks', broker=os.environ['CELERIAC_TEST_BROKER'], backend=os.environ['CELERIAC_TEST_BACKEND'])
app.conf.broker_transport_options = {
    'global_keyprefix': os.environ['CELERIAC_TEST_PREFIX'],
    'visibility_timeout': 2,
}
app.conf.task_default_queue = 'py'


@app.task(name='pytasks.add')
def add(x, y):
    return x + y


@app.task(name='pytasks.fail')
def fail(message):
    raise ValueError(message, 42)
