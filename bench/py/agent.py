"""Benchmark agent for Python Celery: the client, the worker's lifecycle and the drain measurement.

Started by bench/systems/celery.ts as `/usr/bin/python3 bench/py/agent.py` with the environment
that bench/py/benchtasks.py reads. It reads one JSON command per line on stdin and answers one
JSON line on stdout ({"id", "ok", "result"} or {"id", "ok": false, "error"}). Commands:

  hello                          versions (Python, Celery, kombu, broker server)
  publish {mode, seconds, max, threads}
                                 apply_async for `seconds` (or `max` tasks): mode "single" is one
                                 thread sending one task after the other; "concurrent" is `threads`
                                 threads doing so at once (Celery has no asynchronous publish)
  purge                          empty the queue
  start_worker {pool, concurrency}
                                 start `celery worker` in its own session, then send one task and
                                 wait until it ran (that is "ready")
  memory                         VmRSS (kB) of the worker's processes, summed (prefork: parent + children)
  roundtrip {n, warmup}          n sequential noop_stored.delay().get(); latencies in ms
  steady {seconds, warmup, backlog}
                                 publish continuously (at most `backlog` tasks not yet executed)
                                 while the worker runs; tasks executed per second
  drain {n, stored, max_seconds} pause the worker (SIGSTOP to its session), prefill n tasks with
                                 apply_async (two prefill.py processes at once), resume it (SIGCONT) and poll until done, or stop
                                 timing after max_seconds (then purge the rest)
  stop_worker                    warm shutdown (SIGTERM), SIGKILL after 10 s
  close                          stop the worker, empty and delete the queue, exit

Completion of a drain: the execution counter (see benchtasks.py) has grown by n, and the broker
holds nothing for the queue (Redis: LLEN of the queue + HLEN of kombu's `unacked` hash = 0;
RabbitMQ: the queue's ready count = 0 -- unacknowledged counts need the management plugin), and
with results stored, n more result keys exist in the result database.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import celery  # noqa: E402
import kombu  # noqa: E402
import redis  # noqa: E402

from benchtasks import COUNTER_KEY, QUEUE, app, noop, noop_stored  # noqa: E402

PYTHON = '/usr/bin/python3'
POLL = 0.002
RSS_EVERY = 0.05
PREFILL_PROCESSES = 2


TICK = os.sysconf('SC_CLK_TCK')


def proc_cpu(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def broker_cpu():
    total = 0.0
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/comm') as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ('redis-server', 'beam.smp'):
            total += proc_cpu(int(name))
    return total


def log(msg):
    sys.stderr.write(f'[celery agent] {msg}\n')
    sys.stderr.flush()


class Agent:
    def __init__(self):
        self.broker = os.environ['BENCH_BROKER']
        self.is_amqp = self.broker.startswith('amqp')
        self.counter_client = redis.Redis.from_url(os.environ['BENCH_COUNTER_URL'])
        self.results_client = redis.Redis.from_url(os.environ['BENCH_BACKEND'])
        self.broker_redis = None if self.is_amqp else redis.Redis.from_url(self.broker)
        self.worker = None
        self.worker_log = None
        self.helpers = []
        self.conn = app.connection_for_write()
        self.conn.ensure_connection(max_retries=3)
        self.channel = self.conn.channel()
        self.queue = app.amqp.queues[QUEUE](self.channel)
        self.queue.declare()

    # ---- helpers -------------------------------------------------------------------------

    def executed(self):
        return int(self.counter_client.get(COUNTER_KEY) or 0)

    def results(self):
        return int(self.results_client.dbsize())

    def pending(self):
        if self.is_amqp:
            return int(self.channel.queue_declare(queue=QUEUE, passive=True).message_count)
        pipe = self.broker_redis.pipeline()
        pipe.llen(QUEUE)
        pipe.hlen('unacked')
        return sum(int(x) for x in pipe.execute())

    def worker_pids(self):
        if not self.worker:
            return []
        sid = self.worker.pid
        pids = []
        for name in os.listdir('/proc'):
            if not name.isdigit():
                continue
            try:
                with open(f'/proc/{name}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(')') + 2:].split()
            if int(fields[3]) == sid:  # session id
                pids.append(int(name))
        return pids

    def cpu_seconds(self, pids=None):
        total = 0
        for pid in pids if pids is not None else self.worker_pids():
            total += proc_cpu(pid)
        return total

    def rss_kb(self, pids=None):
        total = 0
        for pid in pids if pids is not None else self.worker_pids():
            try:
                with open(f'/proc/{pid}/status') as f:
                    for line in f:
                        if line.startswith('VmRSS:'):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def signal_worker(self, sig):
        if self.worker and self.worker.poll() is None:
            try:
                os.killpg(self.worker.pid, sig)
            except ProcessLookupError:
                pass

    def check_worker(self):
        if not self.worker or self.worker.poll() is not None:
            raise RuntimeError(f'the Celery worker exited{self.log_tail()}')

    def log_tail(self):
        if not self.worker_log:
            return ''
        try:
            with open(self.worker_log.name) as f:
                return ':\n' + f.read()[-2000:]
        except OSError:
            return ''

    def wait_executed(self, target, timeout):
        """Poll until the counter reaches target; returns the time it did."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            if self.executed() >= target:
                return now
            if now > deadline:
                raise RuntimeError(f'timed out: {self.executed()} of {target} tasks executed after {timeout:.0f} s')
            self.check_worker()
            time.sleep(POLL)

    # ---- commands ------------------------------------------------------------------------

    def hello(self):
        if self.is_amqp:
            props = self.conn.connection.server_properties or {}
            server = props.get('version')
            server = server.decode() if isinstance(server, bytes) else server
            server_name = 'RabbitMQ'
        else:
            server = self.broker_redis.info('server').get('redis_version')
            server_name = 'Redis'
        return {
            'python': sys.version.split()[0],
            'celery': celery.__version__,
            'kombu': kombu.__version__,
            'server': f'{server_name} {server}',
        }

    def publish(self, mode='single', seconds=2.0, max=100000, threads=8):
        noop.apply_async()  # connect and declare outside the measurement
        self.purge()
        deadline = time.monotonic() + seconds
        if mode == 'single':
            start = time.monotonic()
            n = 0
            while n < max and time.monotonic() < deadline:
                noop.apply_async()
                n += 1
            elapsed = time.monotonic() - start
        elif mode == 'concurrent':
            counts = [0] * threads
            per = max // threads

            def run(i):
                k = 0
                while k < per and time.monotonic() < deadline:
                    noop.apply_async()
                    k += 1
                counts[i] = k

            pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
            start = time.monotonic()
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            elapsed = time.monotonic() - start
            n = sum(counts)
        else:
            return None  # Celery has no bulk publish API
        self.purge()
        return {'count': n, 'seconds': elapsed}

    def purge(self):
        self.queue.purge()
        if self.broker_redis is not None and not (self.worker and self.worker.poll() is None):
            self.broker_redis.delete('unacked', 'unacked_index')
        return True

    def start_worker(self, pool='prefork', concurrency=2):
        if self.worker:
            raise RuntimeError('a worker is already running')
        import tempfile
        self.worker_log = tempfile.NamedTemporaryFile(prefix='celery-bench-worker-', suffix='.log', delete=False)
        cmd = [PYTHON, '-m', 'celery', '-A', 'benchtasks', 'worker', '-P', pool, '-c', str(concurrency),
               '-l', 'WARNING', '-Q', QUEUE, '-n', f'bench{os.getpid()}@%h',
               '--without-gossip', '--without-mingle', '--without-heartbeat']
        env = dict(os.environ, PYTHONPATH=HERE)
        started = time.monotonic()
        self.worker = subprocess.Popen(cmd, cwd=HERE, env=env, start_new_session=True,
                                       stdin=subprocess.DEVNULL, stdout=self.worker_log, stderr=subprocess.STDOUT)
        base = self.executed()
        noop.apply_async()
        self.wait_executed(base + 1, 60)
        return {'pid': self.worker.pid, 'startSeconds': time.monotonic() - started}

    def memory(self):
        self.check_worker()
        return {'rssKb': self.rss_kb(), 'processes': len(self.worker_pids())}

    def roundtrip(self, n=500, warmup=20):
        self.check_worker()
        out = []
        for i in range(warmup + n):
            t = time.perf_counter()
            noop_stored.delay().get(timeout=30)
            if i >= warmup:
                out.append((time.perf_counter() - t) * 1000)
        return {'ms': out}

    def steady(self, seconds=3.0, warmup=1.0, backlog=2000):
        self.check_worker()
        base = self.executed()
        published = 0
        start = time.monotonic()
        measure_from = start + warmup
        measure_to = measure_from + seconds
        c1 = t1 = None
        while True:
            now = time.monotonic()
            if c1 is None and now >= measure_from:
                c1, t1 = self.executed(), now
            if now >= measure_to:
                c2, t2 = self.executed(), now
                break
            noop.apply_async()
            published += 1
            if published % 50 == 0:
                while published - (self.executed() - base) > backlog and time.monotonic() < measure_to:
                    time.sleep(0.001)
        # Empty the queue and let the worker finish what it holds, so the next measurement starts clean.
        self.settle(base + published)
        return {'executed': c2 - c1, 'seconds': t2 - t1, 'published': published}

    def drain(self, n=20000, stored=False, max_seconds=60.0, payload=0):
        self.check_worker()
        self.signal_worker(signal.SIGSTOP)
        try:
            base_results = self.results()
            base = self.executed()
            p0 = time.monotonic()
            self.prefill(n, stored, payload)
            prefill = time.monotonic() - p0
        finally:
            self.signal_worker(signal.SIGCONT)
        t0 = time.monotonic()
        pids = self.worker_pids()  # once: scanning /proc at every sample would cost CPU during the drain
        cpu0, broker0 = self.cpu_seconds(pids), broker_cpu()
        cap = t0 + max_seconds
        peak = self.rss_kb(pids)
        next_rss = t0 + RSS_EVERY
        while True:
            now = time.monotonic()
            if now >= next_rss:
                peak = max(peak, self.rss_kb(pids))
                next_rss = now + RSS_EVERY
            executed = self.executed() - base
            if executed >= n and self.pending() == 0 and (not stored or self.results() - base_results >= n):
                return {'n': n, 'executed': executed, 'seconds': time.monotonic() - t0, 'complete': True,
                        'peakRssKb': peak, 'prefillSeconds': prefill,
                        'workerCpuSeconds': self.cpu_seconds(pids) - cpu0, 'brokerCpuSeconds': broker_cpu() - broker0}
            if now >= cap:
                used = {'workerCpuSeconds': self.cpu_seconds(pids) - cpu0, 'brokerCpuSeconds': broker_cpu() - broker0}
                self.settle(base + n)
                return {'n': n, 'executed': min(executed, n), 'seconds': now - t0, 'complete': False,
                        'peakRssKb': peak, 'prefillSeconds': prefill, **used}
            self.check_worker()
            time.sleep(POLL)

    def settle(self, target):
        """After a capped drain: purge the rest, wait until the worker holds nothing."""
        self.queue.purge()
        until = time.monotonic() + 30
        last, stable_since = -1, time.monotonic()
        while time.monotonic() < until:
            c = self.executed()
            if c != last:
                last, stable_since = c, time.monotonic()
            if c >= target or (time.monotonic() - stable_since > 0.2 and self.pending() == 0):
                return
            time.sleep(0.02)

    def prefill(self, n, stored, payload=0):
        """Send n tasks through PREFILL_PROCESSES helper processes (bench/py/prefill.py) at once."""
        if not self.helpers:
            for _ in range(PREFILL_PROCESSES):
                self.helpers.append(subprocess.Popen([PYTHON, os.path.join(HERE, 'prefill.py')], cwd=HERE,
                                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        shares = [n // len(self.helpers) + (1 if i < n % len(self.helpers) else 0) for i in range(len(self.helpers))]
        for helper, share in zip(self.helpers, shares):
            helper.stdin.write(f'{share} {1 if stored else 0} {payload}\n')
            helper.stdin.flush()
        for helper in self.helpers:
            line = helper.stdout.readline()
            if not line.startswith('ok'):
                raise RuntimeError(f'prefill helper failed (exit {helper.poll()})')

    def stop_helpers(self):
        for helper in self.helpers:
            try:
                helper.stdin.close()
                helper.wait(5)
            except Exception:  # noqa: BLE001
                helper.kill()
        self.helpers = []

    def stop_worker(self):
        w = self.worker
        if not w:
            return True
        self.worker = None
        if w.poll() is None:
            try:
                os.killpg(w.pid, signal.SIGCONT)
                w.send_signal(signal.SIGTERM)
                w.wait(10)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:
            os.killpg(w.pid, signal.SIGKILL)  # stragglers (prefork children) of this session
        except (ProcessLookupError, PermissionError):
            pass
        try:
            w.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.worker_log:
            self.worker_log.close()
            try:
                os.unlink(self.worker_log.name)
            except OSError:
                pass
            self.worker_log = None
        return True

    def close(self):
        self.stop_helpers()
        self.stop_worker()
        try:
            self.purge()
            if self.is_amqp:
                self.channel.queue_delete(QUEUE)
                self.channel.exchange_delete(QUEUE)
        finally:
            try:
                self.conn.release()
            except Exception:  # noqa: BLE001
                pass
        return True


def main():
    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGHUP, terminate)
    agent = None
    try:
        agent = Agent()
        out = sys.stdout
        out.write(json.dumps({'id': 0, 'ok': True, 'result': 'ready'}) + '\n')
        out.flush()
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            op = cmd.pop('op')
            cid = cmd.pop('id')
            try:
                result = getattr(agent, op)(**cmd)
                reply = {'id': cid, 'ok': True, 'result': result}
            except Exception as exc:  # noqa: BLE001
                reply = {'id': cid, 'ok': False, 'error': f'{type(exc).__name__}: {exc}'}
            out.write(json.dumps(reply) + '\n')
            out.flush()
            if op == 'close':
                agent = None
                break
    finally:
        if agent is not None:
            try:
                agent.close()
            except Exception as exc:  # noqa: BLE001
                log(f'cleanup failed: {exc}')


if __name__ == '__main__':
    main()
