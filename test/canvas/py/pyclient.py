"""Workflows built in Python over celeriac tasks (js.*), for test/canvas/interop.test.ts.
Sends them with apply_async, waits for their results with Python's own client, and prints
one JSON object: {case: {"id": ..., "value": ...}}."""
import sys

from celery import chain, chord, group
from celery.result import GroupResult
from kombu.utils.json import dumps

from pycanvas import app

js = {name: app.signature('js.' + name) for name in ('add', 'mul', 'xsum', 'collect')}


def s(name, *args):
    return js[name].clone(args)


def ids(r):
    """Every task and group id of a result, its parents and members (the test deletes their results)."""
    out = []
    while r is not None:
        out.append(r.id)
        for child in getattr(r, 'results', None) or []:
            out.extend(ids(child))
        r = r.parent
    return out


out = {}
which = sys.argv[1] if len(sys.argv) > 1 else 'all'

if which in ('all', 'workflows'):
    r = chain(s('add', 1, 2), s('mul', 3), s('add', 4)).apply_async()
    out['chain'] = {'id': r.id, 'value': r.get(timeout=30), 'ids': ids(r)}

    r = chord([s('add', i, i) for i in range(5)], s('xsum')).apply_async()
    out['chord'] = {'id': r.id, 'value': r.get(timeout=30), 'ids': ids(r)}

    r = chain(s('add', 1, 1), chord([s('add', 1), s('add', 2)], s('xsum')), s('mul', 10)).apply_async()
    out['chord-in-chain'] = {'id': r.id, 'value': r.get(timeout=30), 'ids': ids(r)}

    r = chain(s('add', 1, 1), group(s('add', 1), s('add', 2)), s('collect')).apply_async()
    out['group-then-task'] = {'id': r.id, 'value': r.get(timeout=30), 'ids': ids(r)}

    r = group(chain(s('add', 1, 1), s('mul', 2)), chain(s('add', 2, 2), s('mul', 3))).apply_async()
    r.save()
    out['group-of-chains'] = {'id': r.id, 'value': r.get(timeout=30), 'ids': ids(r)}

if which == 'restore':
    g = GroupResult.restore(sys.argv[2], app=app)
    out['restore'] = {'id': g.id, 'value': g.get(timeout=30)}

sys.stdout.write(dumps(out))
