"""Send tasks as a Python Celery client and wait for their results.

Usage: python3 client.py '<json list of {"task", "args", "queue"}>'
Prints a JSON list of {"id", "result"} or {"id", "error"}.
"""
import json
import sys

from pytasks import app

calls = json.loads(sys.argv[1])
sent = [app.send_task(c['task'], args=c['args'], queue=c['queue']) for c in calls]
out = []
for r in sent:
    try:
        out.append({'id': r.id, 'result': r.get(timeout=20)})
    except Exception as e:
        out.append({'id': r.id, 'error': '%s: %s' % (type(e).__name__, e)})
print(json.dumps(out))
