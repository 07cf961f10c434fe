"""Send tasks as a Python Celery 5.2 client (app of paritytasks.py) and report what it sees.

Usage: python3 parityclient.py '<json list of calls>'
A call: {"task", "args", "kwargs", "options": {apply_async options}, "link_error": [{"task",
"args", "kwargs", "immutable"}], "chord": [header calls] (the call is the body), "until": a state to wait for instead of the
result, "rebuild": true (the result is a result handle's tuple: rebuild
it with result_from_tuple and wait for it)}.
Prints a JSON list: {"id", "state", "result", "meta": the stored result as Celery wrote it,
"caught": the Celery or builtin exception class an `except` clause matches, "rebuilt", "keys":
other result keys the call made (a chord's), to delete}.
"""
import json
import sys
import time

import celery.exceptions as cx
from celery import chord, signature
from celery.result import GroupResult, result_from_tuple

from paritytasks import app

CATCH = [cx.SoftTimeLimitExceeded, cx.TimeLimitExceeded, cx.ImproperlyConfigured, cx.NotRegistered,
         cx.ChordError, cx.WorkerLostError, cx.Reject, cx.Retry, TypeError, ValueError]

sent = []
for call in json.loads(sys.argv[1]):
    link_error = [signature(e['task'], args=e.get('args', []), kwargs=e.get('kwargs', {}), immutable=e.get('immutable', False), app=app)
                  for e in call.get('link_error', [])]
    options = dict(call.get('options', {}))
    if link_error:
        options['link_error'] = link_error
    if 'chord' in call:
        sig = lambda c: signature(c['task'], args=c.get('args', []), kwargs=c.get('kwargs', {}), app=app)
        r = chord([sig(c) for c in call['chord']], sig(call)).apply_async(**options)
        header, r.parent = r.parent, None  # wait for the body's own state, not the header's first error
        call['keys'] = ['celery-task-meta-' + h.id for h in header.results] + [
            'celery-taskset-meta-' + header.id + suffix for suffix in ('', '.j', '.t', '.s')]
    else:
        r = app.send_task(call['task'], args=call.get('args', []), kwargs=call.get('kwargs', {}), **options)
    sent.append((r, call))

client = app.backend.client
out = []
deadline = time.time() + 25
for r, call in sent:
    entry = {'id': r.id, 'keys': call.get('keys', [])}
    while call.get('until') and time.time() < deadline:
        raw = client.get('celery-task-meta-' + r.id)
        if raw and json.loads(raw).get('status') == call['until']:
            break
        time.sleep(0.05)
    try:
        if call.get('until'):
            raise LookupError('not waited for')
        entry['result'] = r.get(timeout=max(0.1, deadline - time.time()))
        if call.get('rebuild'):
            handle = result_from_tuple(entry['result'], app)
            wait = handle.join if isinstance(handle, GroupResult) else handle.get  # join: one result at a time
            entry['rebuilt'] = {'type': type(handle).__name__, 'value': wait(timeout=max(0.1, deadline - time.time()))}
    except Exception as e:  # the task's own exception, rebuilt by Celery
        entry['caught'] = next((c.__name__ for c in CATCH if isinstance(e, c)), None)
        entry['error'] = repr(e)
    raw = client.get('celery-task-meta-' + r.id)
    meta = json.loads(raw) if raw else {}
    entry['state'] = meta.get('status')
    entry['meta'] = meta.get('result')
    out.append(entry)
print(json.dumps(out))
