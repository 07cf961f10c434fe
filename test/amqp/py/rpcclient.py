"""A Python Celery client on rpc://: send tasks, then wait for their results.

Usage: python3 rpcclient.py send '<json list of {"task", "args", "queue"}>'
         prints a JSON list of {"id", "result"} or {"id", "error", "type", "module"}
       python3 rpcclient.py declare <oid>
         declares the reply queue of client <oid> exactly as RPCBackend.binding does;
         prints {"declared": <oid>} (kombu raises on PRECONDITION_FAILED)
"""
import json
import sys

from rpctasks import app


def send(calls):
    sent = [app.send_task(c['task'], args=c['args'], queue=c['queue']) for c in calls]
    out = []
    # Collected in reverse order: the replies of the others arrive meanwhile and are buffered.
    for r in reversed(sent):
        try:
            out.append({'id': r.id, 'result': r.get(timeout=20)})
        except Exception as e:
            out.append({'id': r.id, 'error': str(e), 'type': type(e).__name__, 'module': type(e).__module__})
    out.reverse()
    return out


def declare(oid):
    backend = app.backend
    backend.__dict__['oid'] = oid  # cached_property: the reply queue of that client
    with app.connection() as conn:
        backend.binding(conn.default_channel).declare()
    return {'declared': oid}


if __name__ == '__main__':
    command = sys.argv[1]
    result = send(json.loads(sys.argv[2])) if command == 'send' else declare(sys.argv[2])
    print(json.dumps(result))
