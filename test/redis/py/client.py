"""Send tasks as a Python Celery client and wait for their results.

Usage: python3 client.py '<json list of {"task", "args", "queue"}>'
Prints a JSON list: {"id", "result"} (and "types", the Python types of a list result's items) or {"id", "exc_type", "exc_module", "exc_args", "traceback"}.
"""
import json
import sys

from pytasks import app

calls = json.loads(sys.argv[1])
sent = [app.send_task(c['task'], args=c['args'], queue=c['queue']) for c in calls]
out = []
for r in sent:
    try:
        result = r.get(timeout=20)
        out.append({'id': r.id, 'result': result})
        if isinstance(result, list):
            out[-1]['types'] = [type(v).__name__ for v in result]
    except Exception as e:  # the task's own exception, rebuilt by Celery
        out.append({'id': r.id, 'exc_type': type(e).__name__, 'exc_module': type(e).__module__,
                    'exc_args': [a if isinstance(a, (int, float, str)) else repr(a) for a in e.args],
                    'traceback': r.traceback})
print(json.dumps(out))
