"""Python Celery 5.2 side of test/amqp/interop.test.ts.

Broker (an AMQP URL on the test's own vhost) and result backend come from the environment.
"""
import os

from celery import Celery

app = Celery('pytasks', broker=os.environ['CELERIAC_TEST_BROKER'], backend=os.environ['CELERIAC_TEST_BACKEND'])
app.conf.task_default_queue = 'py'


@app.task(name='pytasks.add')
def add(x, y):
    return x + y
