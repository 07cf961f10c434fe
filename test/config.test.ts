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

  it('rejects an unknown key with a suggestion', () => {
    expect(() => new Celery('proj', { taskAckLate: true } as never)).toThrow(/unknown configuration key "taskAckLate"; did you mean "taskAcksLate"\?/);
  });

  it("suggests the camelCase name for Celery's snake_case setting", () => {
    expect(() => new Celery('proj', { task_acks_late: true } as never)).toThrow(/did you mean "taskAcksLate"/);
  });

  it.each([
    [{ workerConcurrency: 0 }, /workerConcurrency \(Celery's worker_concurrency\) must be at least 1, got 0/],
    [{ workerConcurrency: 1.5 }, /must be an integer/],
    [{ taskAcksLate: 'yes' }, /taskAcksLate .* must be true or false, got "yes"/],
    [{ broker: 42 }, /broker .* must be a string/],
    [{ taskSerializer: 'pickle' }, /taskSerializer .* must be one of json, got "pickle"/],
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
