/** Configuration as Celery users keep it: configFromObject, configFromEnv, autodiscoverTasks. */
import { describe, expect, it } from 'vitest';
import { Celery, ConfigurationError } from '../src/index.ts';

describe('configFromObject', () => {
  it("takes celeriac's and Celery's names, and leaves the other settings as they were", () => {
    const app = new Celery('proj', { broker: 'memory://', taskTrackStarted: true });
    expect(app.configFromObject({ task_acks_late: true, resultExpires: 60, TASK_DEFAULT_QUEUE: 'q1' })).toBe(app);
    expect(app.conf.taskAcksLate).toBe(true);
    expect(app.conf.resultExpires).toBe(60);
    expect(app.conf.taskDefaultQueue).toBe('q1');
    expect(app.conf.taskTrackStarted).toBe(true);
  });

  it('reads only the keys of a namespace, as Celery with namespace="CELERY"', () => {
    const app = new Celery('proj', { broker: 'memory://' });
    app.configFromObject({ DEBUG: true, CELERY_TASK_ACKS_LATE: true, CELERY_BROKER_URL: 'memory://other' }, { namespace: 'CELERY' });
    expect(app.conf.taskAcksLate).toBe(true);
    expect(app.conf.broker).toBe('memory://other');
  });

  it('fails on unknown keys and bad values, all at once', () => {
    const app = new Celery('proj', { broker: 'memory://' });
    const attempt = () => app.configFromObject({ task_acks_lat: true, worker_concurrency: 'four' });
    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow(/2 configuration problems/);
    expect(attempt).toThrow(/workerConcurrency \(Celery's worker_concurrency\) must be a number, got "four"/);
    expect(app.conf.workerConcurrency).toBe(10);
  });

  it('reads a module: named exports under Celery\'s names, or one export with a namespace', async () => {
    const app = new Celery('proj');
    await app.configFromObject('./test/fixtures/config/celeryconfig.ts');
    expect([app.conf.broker, app.conf.taskAcksLate, app.conf.taskDefaultQueue, app.conf.workerPrefetchMultiplier]).toEqual(['memory://', true, 'from-config', 1]);
    const django = new Celery('proj');
    await django.configFromObject('test.fixtures.config.django-style:settings', { namespace: 'CELERY' });
    expect([django.conf.broker, django.conf.taskTrackStarted, django.conf.resultExpires]).toEqual(['memory://', true, 60]);
    await expect(new Celery('proj').configFromObject('./test/fixtures/config/missing.ts')).rejects.toThrow(/Cannot find module .*missing\.ts/);
  });

  it('refuses to change an app that is already connected', async () => {
    const app = new Celery('proj', { broker: 'memory://' });
    await app.transport();
    expect(() => app.configFromObject({ taskAcksLate: true })).toThrow(/already connected/);
    await app.close();
  });
});

describe('configFromEnv', () => {
  it('parses each variable for the type of its setting', () => {
    const app = new Celery('proj', { broker: 'memory://' }).configFromEnv({
      env: {
        CELERY_TASK_ACKS_LATE: 'true',
        CELERY_WORKER_PREFETCH_MULTIPLIER: '1',
        CELERY_ACCEPT_CONTENT: 'json,auth',
        CELERY_BROKER_TRANSPORT_OPTIONS: '{"visibility_timeout": 60}',
        CELERY_TASK_TIME_LIMIT: 'None',
        CELERY_TIMEZONE: 'Europe/Paris',
        CELERY_APP: 'proj', // the CLI's, not a setting
        PATH: '/usr/bin',
      },
    });
    expect(app.conf.taskAcksLate).toBe(true);
    expect(app.conf.workerPrefetchMultiplier).toBe(1);
    expect(app.conf.acceptContent).toEqual(['json', 'auth']);
    expect(app.conf.brokerTransportOptions).toEqual({ visibility_timeout: 60 });
    expect(app.conf.taskTimeLimit).toBeNull();
    expect(app.conf.timezone).toBe('Europe/Paris');
  });

  it('names the variable of an unknown name or a bad value, with every problem at once', () => {
    const app = new Celery('proj', { broker: 'memory://' });
    let err: unknown;
    try {
      app.configFromEnv({ env: { CELERY_TASK_ACKS_LAT: 'true', CELERY_TASK_ACKS_LATE: 'maybe', CELERY_WORKER_CONCURRENCY: '0', CELERY_BEAT_SCHEDULE: '{' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigurationError);
    const text = (err as Error).message;
    expect(text).toContain('4 configuration problems');
    expect(text).toContain('environment variable CELERY_TASK_ACKS_LAT: no Celery setting is named task_acks_lat; did you mean CELERY_TASK_ACKS_LATE?');
    expect(text).toContain('environment variable CELERY_TASK_ACKS_LATE="maybe": must be one of true, 1, yes, on, false, 0, no, off');
    expect(text).toContain("environment variable CELERY_WORKER_CONCURRENCY=\"0\": configuration workerConcurrency (Celery's worker_concurrency) must be at least 1");
    expect(text).toContain('environment variable CELERY_BEAT_SCHEDULE="{": must be an object in JSON');
    expect(app.conf.taskAcksLate).toBe(false);
  });

  it('tells about, and skips, Celery settings celeriac does not read (a Python service may share the variables)', () => {
    const told: string[] = [];
    const app = new Celery('proj', { broker: 'memory://' }).configFromEnv({ env: { CELERY_WORKER_HIJACK_ROOT_LOGGER: 'false' }, onIgnored: (m) => told.push(m) });
    expect(told).toEqual(["CELERY_WORKER_HIJACK_ROOT_LOGGER: Celery's worker_hijack_root_logger is not supported by celeriac; ignored"]);
    expect(app.conf.broker).toBe('memory://');
  });

  it('takes another prefix', () => {
    const app = new Celery('proj', { broker: 'memory://' }).configFromEnv({ prefix: 'ORDERS_', env: { ORDERS_TASK_DEFAULT_QUEUE: 'orders', CELERY_TASK_DEFAULT_QUEUE: 'x' } });
    expect(app.conf.taskDefaultQueue).toBe('orders');
  });
});

describe('autodiscoverTasks', () => {
  it("imports each package's tasks module when a worker starts (finalize), skipping packages without one", async () => {
    const { app } = await import('./fixtures/autodiscover/app.ts');
    expect(app.tasks.has('orders.place')).toBe(false);
    await app.finalize();
    expect(app.tasks.has('orders.place')).toBe(true);
    await app.finalize(); // once
    expect([...app.tasks.keys()].filter((n) => n === 'orders.place')).toHaveLength(1);
  });

  it('fails for a package that does not exist, and imports at once with force', async () => {
    const app = new Celery('proj', { broker: 'memory://' });
    await expect(app.autodiscoverTasks(['test.fixtures.autodiscover.nope'], { force: true })).rejects.toThrow(/no package test\.fixtures\.autodiscover\.nope/);
  });
});
