import { describe, expect, it } from 'vitest';
import { Celery, ConfigurationError } from '../src/index.ts';

describe('configuration', () => {
  it('uses the embedded SQLite default when nothing is configured', () => {
    const app = new Celery('proj');
    expect(app.conf.broker).toBe('sqlite://celeriac.db');
    expect(app.backendUrl()).toBe('sqlite://celeriac.db');
    expect(app.conf.taskDefaultQueue).toBe('celery');
    expect(app.conf.workerPrefetchMultiplier).toBe(4);
    expect(app.conf.resultExpires).toBe(86_400);
  });

  it('takes the pool settings with Celery\'s names and units, and refuses a pool it does not have', () => {
    const app = new Celery('proj', { workerPool: 'prefork', workerMaxTasksPerChild: 100, workerMaxMemoryPerChild: 200_000, workerPoolRestarts: true });
    expect(app.conf.workerPool).toBe('prefork');
    expect(app.conf.workerMaxMemoryPerChild).toBe(200_000);
    expect(() => new Celery('proj', { workerPool: 'greenlet' })).toThrow(/workerPool.*greenlet|greenlet.*workerPool/s);
    expect(() => new Celery('proj', { workerMaxTasksPerChild: 0 })).toThrow(ConfigurationError);
  });

  it('rejects an unknown key with a suggestion', () => {
    expect(() => new Celery('proj', { taskAckLate: true } as never)).toThrow(/unknown configuration key "taskAckLate"; did you mean "taskAcksLate"\?/);
  });

  it("suggests the camelCase name for Celery's snake_case setting", () => {
    expect(() => new Celery('proj', { task_acks_late: true } as never)).toThrow(/did you mean "taskAcksLate"/);
  });

  it('reports a Celery setting celeriac does not support yet as such, without a "did you mean"', () => {
    for (const key of ['workerDisableRateLimits', 'worker_disable_rate_limits', 'taskAnnotations', 'brokerPoolLimit']) {
      const attempt = () => new Celery('proj', { [key]: 1 } as never);
      expect(attempt).toThrow(ConfigurationError);
      expect(attempt).toThrow(/is a Celery setting that is not supported yet by celeriac; remove it$/);
      expect(attempt).not.toThrow(/did you mean/);
    }
    expect(() => new Celery('proj', { workerDisableRateLimits: true } as never)).toThrow(
      'configuration key "workerDisableRateLimits" (Celery\'s worker_disable_rate_limits) is a Celery setting that is not supported yet by celeriac; remove it',
    );
  });

  it("points a Celery name that celeriac spells differently to celeriac's key", () => {
    expect(() => new Celery('proj', { brokerUrl: 'redis://' } as never)).toThrow('unknown configuration key "brokerUrl"; did you mean "broker"? (celeriac\'s name for Celery\'s broker_url)');
    expect(() => new Celery('proj', { result_backend: 'redis://' } as never)).toThrow(/did you mean "backend"\?/);
  });

  it('reports every bad key and value at once, one per line', () => {
    let err: unknown;
    try {
      new Celery('proj', { taskAckLate: true, workerDisableRateLimits: true, workerConcurrency: 0, taskDefaultQueue: 'ok', timezone: 'Mars/Olympus' } as never);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message.split('\n')).toEqual([
      '4 configuration problems:',
      expect.stringMatching(/^ {2}- unknown configuration key "taskAckLate"; did you mean "taskAcksLate"\?/),
      expect.stringMatching(/^ {2}- configuration key "workerDisableRateLimits" .* not supported yet by celeriac/),
      expect.stringMatching(/^ {2}- configuration workerConcurrency .* must be at least 1, got 0$/),
      expect.stringMatching(/^ {2}- configuration timezone \(Celery's timezone\) "Mars\/Olympus" is not a time zone this platform knows; use an IANA name such as "Europe\/Paris"/),
    ]);
  });

  it('timezone takes IANA names (checked with the platform\'s data) and enableUtc a boolean; both default as Celery', () => {
    expect(new Celery('proj').conf).toMatchObject({ timezone: null, enableUtc: true });
    expect(new Celery('proj', { timezone: 'Europe/Paris', enableUtc: false }).conf).toMatchObject({ timezone: 'Europe/Paris', enableUtc: false });
    expect(() => new Celery('proj', { timezone: 'Paris' })).toThrow(/timezone .* "Paris" is not a time zone/);
    expect(() => new Celery('proj', { timezone: 1 } as never)).toThrow(/must be an IANA time zone name/);
  });

  it.each([
    [{ workerConcurrency: 0 }, /workerConcurrency \(Celery's worker_concurrency\) must be at least 1, got 0/],
    [{ workerConcurrency: 1.5 }, /must be an integer/],
    [{ taskAcksLate: 'yes' }, /taskAcksLate .* must be true or false, got "yes"/],
    [{ broker: 42 }, /broker .* must be a string/],
    [{ taskSerializer: 'pickle' }, /taskSerializer .* must be one of json, auth, got "pickle"/],
    [{ taskRoutes: [] }, /taskRoutes .* must be an object/],
    [{ acceptContent: ['json', 1] }, /must be a list of strings/],
  ])('rejects a bad value %j', (config, message) => {
    expect(() => new Celery('proj', config as never)).toThrow(ConfigurationError);
    expect(() => new Celery('proj', config as never)).toThrow(message);
  });

  it('has no result backend for a server broker unless one is configured', async () => {
    const app = new Celery('proj', { broker: 'redis://127.0.0.1:6379/0' });
    expect(app.backendUrl()).toBeNull();
    await expect(app.backend()).rejects.toThrow(/has no result backend: set the "backend" option/);
  });

  it('names the scheme of an unsupported broker URL', async () => {
    const app = new Celery('proj', { broker: 'kafka://localhost' });
    await expect(app.transport()).rejects.toThrow(/kafka/);
  });
});

describe('task options', () => {
  const app = new Celery('proj', { broker: 'memory://options' });

  it('rejects unknown options with a suggestion', () => {
    expect(() => app.task({ name: 't.a', maxRetry: 3 } as never, () => 1)).toThrow(/task "t.a": unknown option "maxRetry"; did you mean "maxRetries"\?/);
  });

  it('rejects negative time limits', () => {
    expect(() => app.task({ name: 't.b', timeLimit: -1 }, () => 1)).toThrow(/timeLimit must be a number of seconds ≥ 0/);
  });

  it('rejects an unsupported serializer', () => {
    expect(() => app.task({ name: 't.c', serializer: 'yaml' }, () => 1)).toThrow(/serializer "yaml" is not supported/);
  });

  it('rejects autoretryFor that is not a list of classes', () => {
    expect(() => app.task({ name: 't.d', autoretryFor: ['Error'] as never }, () => 1)).toThrow(/autoretryFor must be a list of error classes/);
  });

  it('refuses to register a name twice', () => {
    app.task('t.e', () => 1);
    expect(() => app.task('t.e', () => 2)).toThrow(/already registered/);
  });
});
