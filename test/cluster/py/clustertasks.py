"""Python Celery 5.2 worker of test/cluster: broker, backend and broker key prefix from the environment."""
import os
import time

from celery import Celery

app = Celery('clustertasks', broker=os.environ['CELERIAC_TEST_BROKER'], backend=os.environ['CELERIAC_TEST_BACKEND'])
app.conf.task_default_queue = os.environ.get('CELERIAC_TEST_QUEUE', 'celery')
app.conf.broker_transport_options = {'global_keyprefix': os.environ.get('CELERIAC_TEST_PREFIX', '')}


@app.task(name='cluster.py_sleep')
def py_sleep(seconds):
    time.sleep(seconds)
    return 'slept'


@app.task(name='cluster.py_echo')
def py_echo(value):
    return value


@app.task(name='cluster.py_fail')
def py_fail(message):
    raise ValueError(message)
