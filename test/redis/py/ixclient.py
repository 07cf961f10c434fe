"""Send tasks as a Python Celery 5.2 client (app of ixtasks.py) and, unless told not to, wait for them.

Usage: python3 ixclient.py '<json list of calls>'
A call: {"task", "args", "kwargs", "options": {apply_async options}, "wait": true}. In args, kwargs
and options, {"$datetime": iso} is a datetime, {"$date": iso} a date, {"$in": seconds} an aware
UTC datetime that many seconds from now.
Prints a JSON list: {"id", "sent_at", "result"} or {"id", "sent_at", "exc_type", "exc_args"}.
"""
import datetime
import json
import sys
import time

from ixtasks import app


def decode(v):
    if isinstance(v, dict):
        if set(v) == {'$datetime'}:
            return datetime.datetime.fromisoformat(v['$datetime'])
        if set(v) == {'$date'}:
            return datetime.date.fromisoformat(v['$date'])
        if set(v) == {'$in'}:
            return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=v['$in'])
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


sent = []
for call in json.loads(sys.argv[1]):
    at = time.time()
    r = app.send_task(call['task'], args=decode(call.get('args', [])), kwargs=decode(call.get('kwargs', {})), **decode(call.get('options', {})))
    sent.append((r, at, call.get('wait', True)))
out = []
deadline = time.time() + 20
for r, at, wait in sent:
    entry = {'id': r.id, 'sent_at': at}
    if wait:
        try:
            entry['result'] = r.get(timeout=max(0.1, deadline - time.time()))
        except Exception as e:  # the task's own exception, rebuilt by Celery
            entry['exc_type'] = type(e).__name__
            entry['exc_args'] = [a if isinstance(a, (int, float, str)) else repr(a) for a in e.args]
    out.append(entry)
print(json.dumps(out))
