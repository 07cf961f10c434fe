"""Print, as one JSON object, Celery's own dict form of the canvases that
test/canvas/signature.test.ts builds with celeriac (no broker needed: nothing is sent).
Frozen cases ("...:frozen") have every generated id; the test maps ids to tokens."""
import sys

from celery import Celery, chain, chord, group
from kombu.utils.json import dumps

app = Celery('dicts', broker='memory://', backend='cache+memory://')


@app.task(name='tasks.add')
def add(x, y):
    return x + y


@app.task(name='tasks.mul')
def mul(x, y):
    return x * y


@app.task(name='tasks.xsum')
def xsum(values):
    return sum(values)


@app.task(name='tasks.echo')
def echo(*args):
    return args


@app.task(name='tasks.double')
def double(x):
    return 2 * x


def linked():
    s = add.s(2, 3)
    s.link(mul.s(10))
    s.link_error(echo.si('errback'))
    return s


CASES = {
    'sig': lambda: add.s(2, 3),
    'si': lambda: echo.si('x'),
    'options': lambda: add.s(2).set(countdown=10, queue='q', priority=5),
    'link': linked,
    'chain': lambda: chain(add.s(1, 2), add.s(3), mul.s(4)),
    'pipe': lambda: add.s(1, 2) | add.s(3) | mul.s(4),
    'group': lambda: group(add.s(1, 1), add.s(2, 2)),
    'chord': lambda: chord([add.s(1, 1), add.s(2, 2)], xsum.s()),
    'group-then-task': lambda: chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s()),
    'group-of-chains': lambda: group(chain(add.s(1, 1), mul.s(2)), chain(add.s(2, 2), mul.s(3))),
    'chord-in-chain': lambda: chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(2)),
    'nested-3': lambda: chord([group(chain(add.s(1, 1), mul.s(2)), add.s(3, 3)), add.s(4, 4)], xsum.s() | double.s()),
    'chord-pipe': lambda: chord([add.s(1, 1)], xsum.s()) | double.s(),
    'map': lambda: double.map([1, 2, 3]),
    'starmap': lambda: add.starmap([[1, 2], [3, 4]]),
    'chunks': lambda: add.chunks([[1, 2], [3, 4], [5, 6]], 2),
}

out = {}
for name, make in CASES.items():
    out[name] = make()
    frozen = make()
    frozen.freeze()
    out[name + ':frozen'] = frozen
out['oid'] = app.thread_oid
sys.stdout.write(dumps(out))
