"""Python Celery 5.2 side of test/canvas/interop.test.ts: tasks named py.* on queue `py`;
js.* tasks (run by celeriac) are routed to queue `js`. Broker and backend come from
CANVAS_BROKER / CANVAS_BACKEND; broker keys go under the prefix CANVAS_PREFIX, where the worker
also records the id and group of every task it runs (set `<prefix>ids`), so that the test can
delete their results."""
import os

import redis
from celery import Celery, signals

PREFIX = os.environ.get('CANVAS_PREFIX', '')
app = Celery('pycanvas', broker=os.environ['CANVAS_BROKER'], backend=os.environ['CANVAS_BACKEND'])
app.conf.broker_transport_options = {'global_keyprefix': PREFIX}
app.conf.task_routes = {'py.*': {'queue': 'py'}, 'js.*': {'queue': 'js'}}
app.conf.task_default_queue = 'py'


@app.task(name='py.add')
def add(x, y):
    return x + y


@app.task(name='py.mul')
def mul(x, y):
    return x * y


@app.task(name='py.xsum')
def xsum(values):
    return sum(values)


@app.task(name='py.fail')
def fail(what):
    raise ValueError('bad %s' % (what,))


@app.task(name='py.collect')
def collect(values):
    return values


@app.task(name='py.extend', bind=True)
def extend(self, own, added):
    """A chord part that adds `<lang>.add(v, 0)` to its chord for each [lang, v] in added."""
    for lang, v in added:
        self.add_to_chord(app.signature('%s.add' % lang, (v, 0)))
    return own


_ids = None


@signals.task_postrun.connect
def record_ids(task_id=None, task=None, **_):
    global _ids
    if _ids is None:
        _ids = redis.Redis.from_url(os.environ['CANVAS_BROKER'])
    _ids.sadd(PREFIX + 'ids', *[i for i in (task_id, getattr(task.request, 'group', None)) if i])
