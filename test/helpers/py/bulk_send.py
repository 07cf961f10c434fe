"""Publish many tasks as a Python Celery 5.2 client, without waiting.

Usage: python3 bulk_send.py <app module> <task name> <count> <queue>
The app module (found on PYTHONPATH) must define `app`. Prints the task ids as a JSON list.
"""
import importlib
import json
import sys

module, name, count, queue = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = importlib.import_module(module).app
with app.producer_or_acquire() as producer:
    ids = [app.send_task(name, queue=queue, producer=producer).id for _ in range(count)]
print(json.dumps(ids))
