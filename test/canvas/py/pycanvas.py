"""Python Celery 5.2 side of test/canvas/interop.test.ts: tasks named py.* on queue `py`;
js.* tasks (run by celeriac) are routed to queue `js`. Broker and backend (Redis DBs of
the test's own) come from CANVAS_BROKER / CANVAS_BACKEND."""
import os

from celery import Celery

app = Celery('pycanvas', broker=os.environ['CANVAS_BROKER'], backend=os.environ['CANVAS_BACKEND'])
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
