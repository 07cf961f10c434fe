"""The Celery app the benchmark runs: two no-op tasks that only count their executions, and an
echo (the large-message drain) that counts and returns its argument.

Configured from the environment by bench/py/agent.py:
  BENCH_BROKER       broker URL (redis://127.0.0.1:6379/14 or amqp://guest:guest@127.0.0.1:5672//)
  BENCH_BACKEND      result backend URL (redis://127.0.0.1:6379/15)
  BENCH_COUNTER_URL  Redis URL holding the execution counter
  BENCH_COUNTER_KEY  the counter's key
  BENCH_QUEUE        queue name

Counting: each task adds 1 to an in-process counter; a flusher thread per process (started in
the process that runs the task, so in each prefork child) sends INCRBY to Redis at most every
5 ms while tasks run, and never while idle. The task itself does no I/O.
"""
import os
import threading
import time

import redis
from celery import Celery

QUEUE = os.environ.get('BENCH_QUEUE', 'celeriac-bench')
COUNTER_KEY = os.environ.get('BENCH_COUNTER_KEY', 'celeriac-bench:done')
FLUSH_EVERY = 0.005

app = Celery('bench', broker=os.environ['BENCH_BROKER'], backend=os.environ['BENCH_BACKEND'])
app.conf.update(
    task_default_queue=QUEUE,
    # celeriac has no remote control, events, gossip or mingle: leave them all off here too.
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
    result_expires=3600,
    broker_transport_options={'visibility_timeout': 3600},
)


class Counter:
    """Executions of this process, flushed to Redis in batches by a daemon thread."""

    def __init__(self):
        self.pid = None

    def incr(self):
        if self.pid != os.getpid():
            self._start()
        with self.lock:
            self.n += 1
        self.wake.set()

    def _start(self):
        self.pid = os.getpid()
        self.n = 0
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.client = redis.Redis.from_url(os.environ['BENCH_COUNTER_URL'])
        threading.Thread(target=self._run, name='bench-counter', daemon=True).start()

    def _run(self):
        while True:
            self.wake.wait()
            time.sleep(FLUSH_EVERY)
            self.wake.clear()
            with self.lock:
                n, self.n = self.n, 0
            if n:
                self.client.incrby(COUNTER_KEY, n)


counter = Counter()


@app.task(name='bench.noop', ignore_result=True)
def noop():
    counter.incr()


@app.task(name='bench.noop_stored')
def noop_stored():
    counter.incr()
    return 'ok'


@app.task(name='bench.echo')
def echo(value):
    counter.incr()
    return value
