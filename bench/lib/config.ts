/** Fixed names and addresses the benchmark uses (one place, shared by every system). */
export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;
/** Dedicated Redis databases: broker (queues, BullMQ, the execution counter) and results. */
export const BROKER_DB = 14;
export const RESULTS_DB = 15;
export const REDIS_BROKER_URL = `redis://${REDIS_HOST}:${REDIS_PORT}/${BROKER_DB}`;
export const REDIS_RESULTS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}/${RESULTS_DB}`;
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672//';
/** Queue every system uses (BullMQ: queue name under its own key prefix). */
export const QUEUE = 'celeriac-bench';
export const BULLMQ_PREFIX = 'celeriac-bench-bull';
/** Redis key (broker DB) that workers add their executions to. */
export const COUNTER_KEY = 'celeriac-bench:done';
export const TASK_IGNORED = 'bench.noop';
export const TASK_STORED = 'bench.noop_stored';
/** Returns its argument (stored): the large-message drain sends it a LARGE_PAYLOAD_BYTES string. */
export const TASK_ECHO = 'bench.echo';
export const LARGE_PAYLOAD_BYTES = 100 * 1024;
/** The Debian Python that has Celery. */
export const PYTHON = '/usr/bin/python3';
