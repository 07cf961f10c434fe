"""Send one task by name from Python Celery: python3 otel_client.py <task> <queue> '<json args>'; prints its id."""
import json
import sys

from otel_pytasks import app

print(app.send_task(sys.argv[1], args=json.loads(sys.argv[3]), queue=sys.argv[2]).id)
