"""Python Celery 5.2 side of test/amqp/interop-fleet.test.ts and test/amqp/interop-kill.test.ts
(the celeriac side is test/amqp/ixapp.ts: same task names, same records).

Everything comes from the environment, so each test keeps to its own queues and keys:
CELERIAC_TEST_BROKER (amqp://… URL), CELERIAC_TEST_RECORD (redis:// URL where tasks record what
they do), CELERIAC_TEST_PREFIX (key prefix of those records), CELERIAC_TEST_ACKS_LATE ("1":
task_acks_late = True), CELERIAC_TEST_QUIET_TASKS ("1": no log line per task).
"""
import json
import logging
import os
import time

import redis
from celery import Celery, signals

PREFIX = os.environ.get('CELERIAC_TEST_PREFIX', '')

app = Celery('ixtasks', broker=os.environ['CELERIAC_TEST_BROKER'])
app.conf.task_ignore_result = True
app.conf.task_acks_late = os.environ.get('CELERIAC_TEST_ACKS_LATE') == '1'


@signals.after_setup_logger.connect
def quiet_task_logs(**_):
    if os.environ.get('CELERIAC_TEST_QUIET_TASKS'):
        for name in ('celery.app.trace', 'celery.worker.strategy'):
            logging.getLogger(name).setLevel(logging.WARNING)


_redis = None


def rec():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(os.environ['CELERIAC_TEST_RECORD'])
    return _redis


def redelivered(request):
    return bool((request.delivery_info or {}).get('redelivered'))


@app.task(name='ix.record', bind=True)
def record(self):
    """One run of a fleet task: HINCRBY <prefix>ran <id> 1, INCR <prefix>by:py (and <prefix>redelivered if so)."""
    pipe = rec().pipeline(transaction=False)
    pipe.hincrby(PREFIX + 'ran', self.request.id, 1)
    pipe.incr(PREFIX + 'by:py')
    if redelivered(self.request):
        pipe.incr(PREFIX + 'redelivered')
    pipe.execute()


@app.task(name='ix.slow', bind=True)
def slow(self, tag, sleep_in):
    """Records RPUSH <prefix>started:py / done:py {tag, redelivered, acks_late}; sleeps 60 s when sleep_in == 'py'."""
    entry = json.dumps({'tag': tag, 'redelivered': redelivered(self.request), 'acks_late': bool(self.acks_late)})
    rec().rpush(PREFIX + 'started:py', entry)
    if sleep_in == 'py':
        time.sleep(60)
    rec().rpush(PREFIX + 'done:py', entry)
