"""Send one task with kombu compression from Python Celery and print its result as JSON.

Usage: python3 compressed_client.py <task> <queue> <compression> '<json args>'
"""
import json
import sys

from pytasks import app

task, queue, compression, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
r = app.send_task(task, args=args, queue=queue, compression=compression)
print(json.dumps({'id': r.id, 'result': r.get(timeout=20)}))
