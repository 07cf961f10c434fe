"""Publish many tasks as a Python Celery 5.2 client (the app of ixtasks.py), without waiting.

Usage: python3 ixbulk.py <task name> <count> <queue>
Prints the task ids as a JSON list.
"""
import json
import sys

from ixtasks import app

name, count, queue = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with app.producer_or_acquire() as producer:
    ids = [app.send_task(name, queue=queue, producer=producer).id for _ in range(count)]
print(json.dumps(ids))
