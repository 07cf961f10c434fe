"""Prefill helper of bench/py/agent.py: the queue is filled by two of these at once (the worker is
paused meanwhile, so both cores are free), each sending its share with apply_async in a loop.

Reads lines "<n> <0|1 stored> <payload bytes>" on stdin, sends n tasks (with a payload: echo tasks
of a string that long), answers "ok <seconds>" on stdout.
The client ignores results: no per-task result subscription (Celery's Redis backend would
otherwise SUBSCRIBE to every task's channel from the sender).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchtasks import app, echo, noop, noop_stored  # noqa: E402

app.backend.on_task_call = lambda producer, task_id: None


def main():
    with app.producer_or_acquire() as producer:  # connect before the first command
        producer.connection.ensure_connection(max_retries=3)
    for line in sys.stdin:
        if not line.strip():
            continue
        n, stored, payload = (int(x) for x in line.split())
        task = noop_stored if stored else noop
        args = ('x' * payload,) if payload else ()
        if payload:
            task = echo
        t = time.monotonic()
        for _ in range(n):
            task.apply_async(args)
        sys.stdout.write(f'ok {time.monotonic() - t}\n')
        sys.stdout.flush()


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
