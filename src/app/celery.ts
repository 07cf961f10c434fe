import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { createResultBackend } from '../backend/registry.ts';
import type { ResultBackend } from '../backend/result-backend.ts';
import { ConfigurationError, NotRegistered } from '../errors.ts';
import { createTransport } from '../transport/registry.ts';
import type { Transport } from '../transport/types.ts';
import { LamportClock } from '../events/clock.ts';
import { EventDispatcher } from '../events/dispatcher.ts';
import type { Broadcasting } from '../transport/types.ts';
import { CELERIAC_APP } from './brand.ts';
import { brokerSslTransportOptions } from './broker-ssl.ts';
import { bugreport } from './bugreport.ts';
import type { CallOptions, InternalCallOptions } from '../protocol/call-options.ts';
import { type CeleryConfig, type ResolvedConfig, resolveConfig } from './config.ts';
import { celeryEnvOverrides, type ConfigFromObjectOptions, type EnvOptions, settingsFromEnv, settingsFromObject } from './config-sources.ts';
import { type AutodiscoverOptions, configFromModule, discoverTasks, importTaskModules, updateConf } from './config-load.ts';
import { type EagerOptions, EagerResult, runEager } from './eager.ts';
import { publishTask } from './publish.ts';
import { TaskRegistry } from './registry.ts';
import { type SetupSecurityOptions, setupSecurity } from './security.ts';
import { AsyncResult, type ResultSource } from './result.ts';
import { type AnyFn, type BoundFn, type KwargsOf, Task } from './task.ts';
import { type ParamSpec, type TaskOptions, validateTaskOptions } from './task-options.ts';

/**
 * The application: configuration, the task registry, and the connections used to send tasks
 * and read results. `new Celery('proj')` with no broker uses the embedded SQLite default.
 */
export class Celery implements ResultSource {
  readonly [CELERIAC_APP] = true;
  readonly conf: ResolvedConfig;
  /** The app's tasks by name; Celery's canvas builtins (`celery.map`, …) resolve too, unlisted. */
  readonly tasks: Map<string, Task> = new TaskRegistry(this);
  /** Celery's `thread_oid`: the reply_to of messages this app sends. */
  readonly oid = randomUUID();
  /** Celery's `anon_nodename`, the `origin` header of messages this process sends. */
  origin = `gen${process.pid}@${os.hostname()}`;
  private transportInstance: Transport | undefined;
  private backendInstance: ResultBackend | undefined;
  private sentEventDispatcher: EventDispatcher | undefined;
  /** The logical clock of events and control messages this process sends. */
  readonly clock = new LamportClock();

  constructor(
    readonly main: string = 'default',
    config: CeleryConfig = {},
  ) {
    this.conf = resolveConfig(config as Record<string, unknown>);
    Object.assign(this.conf, celeryEnvOverrides());
    if (this.conf.taskSerializer === 'auth') this.setupSecurity();
  }

  /**
   * Celery's config_from_object: settings from an object, or from a module (`'proj.celeryconfig'`,
   * `'./config.ts:settings'`; then it returns a promise). Keys are celeriac's or Celery's names.
   */
  configFromObject(obj: Record<string, unknown>, opts?: ConfigFromObjectOptions): this;
  configFromObject(module: string, opts?: ConfigFromObjectOptions): Promise<this>;
  configFromObject(source: string | Record<string, unknown>, opts: ConfigFromObjectOptions = {}): this | Promise<this> {
    if (typeof source === 'string') return configFromModule(source, opts).then((s) => this.updateConf(s));
    return this.updateConf(settingsFromObject(source, opts));
  }

  /** Settings from environment variables named `CELERY_` + Celery's setting name in capitals (`CELERY_TASK_ACKS_LATE=true`). */
  configFromEnv(opts: EnvOptions = {}): this {
    return this.updateConf(settingsFromEnv(opts));
  }

  private updateConf(settings: Partial<ResolvedConfig>): this {
    if (this.transportInstance || this.backendInstance) {
      throw new ConfigurationError(`app ${this.main} is already connected: change its configuration before it sends tasks or a worker starts`);
    }
    updateConf(this.conf, settings);
    if (this.conf.taskSerializer === 'auth') this.setupSecurity();
    return this;
  }

  private readonly discovered = new Set<string>();
  private readonly finalized = new Set<string>();

  /**
   * Celery's autodiscover_tasks: the `tasks` module of each package (`proj.orders` → proj/orders/tasks.ts)
   * is imported when a worker starts (or now, with `force`); a package without one is skipped.
   */
  autodiscoverTasks(packages: readonly string[], opts: AutodiscoverOptions = {}): Promise<void> {
    for (const m of discoverTasks(packages, opts)) this.discovered.add(m);
    return opts.force ? this.finalize() : Promise.resolve();
  }

  /** Import the modules of the imports and include settings and of autodiscoverTasks, once each (a worker calls it at start). */
  async finalize(): Promise<void> {
    await importTaskModules([...this.conf.imports, ...this.conf.include], [...this.discovered], this.finalized);
  }

  /** Sign task messages and verify the ones received (Celery's `setup_security`); called for you when taskSerializer is 'auth'. */
  setupSecurity(opts: SetupSecurityOptions = {}): void {
    setupSecurity(this.conf, opts);
  }

  /** Register a task: `app.task('tasks.add', (x: number, y: number) => x + y)`. */
  task<A extends unknown[], R>(name: string, fn: (...args: A) => R): Task<A, Awaited<R>>;
  task<A extends unknown[], R>(options: TaskOptions & { bind: true; params: true }, fn: BoundFn<A, R>): Task<A, Awaited<R>, Record<string, unknown>>;
  task<A extends unknown[], R>(options: TaskOptions & { bind?: false; params: true }, fn: (...args: A) => R): Task<A, Awaited<R>, Record<string, unknown>>;
  task<const P extends readonly ParamSpec[], A extends unknown[], R>(options: TaskOptions & { bind: true; params: P }, fn: BoundFn<A, R>): Task<A, Awaited<R>, KwargsOf<P, A>>;
  task<const P extends readonly ParamSpec[], A extends unknown[], R>(options: TaskOptions & { bind?: false; params: P }, fn: (...args: A) => R): Task<A, Awaited<R>, KwargsOf<P, A>>;
  task<A extends unknown[], R>(options: TaskOptions & { bind: true }, fn: BoundFn<A, R>): Task<A, Awaited<R>>;
  task<A extends unknown[], R>(options: TaskOptions & { bind?: false }, fn: (...args: A) => R): Task<A, Awaited<R>>;
  task(nameOrOptions: string | TaskOptions, fn: AnyFn): Task {
    const options = typeof nameOrOptions === 'string' ? { name: nameOrOptions } : { ...nameOrOptions };
    validateTaskOptions(options);
    if (typeof fn !== 'function') throw new ConfigurationError(`task ${options.name}: the second argument must be the task function`);
    if (this.tasks.has(options.name)) throw new ConfigurationError(`task ${JSON.stringify(options.name)} is already registered in app ${this.main}`);
    const task = new Task(this, options, fn);
    this.tasks.set(options.name, task);
    return task;
  }

  getTask(name: string): Task {
    const task = this.tasks.get(name);
    if (!task) throw new NotRegistered(name);
    return task;
  }

  /** Send a task by name; any Celery worker (Python or celeriac) that has it can run it. */
  async sendTask<R = unknown>(name: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: CallOptions = {}): Promise<AsyncResult<R>> {
    const task = this.tasks.get(name);
    if (this.conf.taskAlwaysEager && task) return this.applyEager<R>(task, args, kwargs, options);
    const id = await publishTask(this, name, args, kwargs, options as InternalCallOptions, task?.options);
    return new AsyncResult<R>(id, this, true);
  }

  /** Run a task in this process, as `task_always_eager` does. */
  async applyEager<R>(task: Task, args: unknown[], kwargs: Record<string, unknown>, options: EagerOptions): Promise<EagerResult<R>> {
    const meta = await runEager(this, task, args, kwargs, options);
    return new EagerResult<R>(meta, this);
  }

  /** The dispatcher of `task-sent` events (`taskSendSentEvent`), sent by this app's clients. */
  sentEvents(broadcast: Broadcasting): EventDispatcher {
    this.sentEventDispatcher ??= new EventDispatcher(broadcast, this.origin, this.clock);
    return this.sentEventDispatcher;
  }

  AsyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }

  /** The broker connection, opened on first use. */
  async transport(): Promise<Transport> {
    this.transportInstance ??= createTransport(this.conf.broker, {
      connect_timeout: this.conf.brokerConnectionTimeout,
      ...this.conf.brokerTransportOptions,
      ...brokerSslTransportOptions(this.conf.brokerUseSsl),
    });
    return this.transportInstance;
  }

  /** The result backend, opened on first use. */
  async backend(): Promise<ResultBackend> {
    if (!this.backendInstance) {
      const url = this.backendUrl();
      if (!url) {
        throw new ConfigurationError(
          `app ${this.main} has no result backend: set the "backend" option (e.g. sqlite://celeriac.db) to store and read results`,
        );
      }
      this.backendInstance = createResultBackend(url, {
        broker: this.conf.broker,
        oid: this.oid,
        expires: this.conf.resultExpires,
        transport: () => this.transport(),
        log: this.conf.brokerTransportOptions.logger as { warning(message: string): void } | undefined,
      }, { ...this.conf.resultBackendTransportOptions, ...brokerSslTransportOptions(this.conf.redisBackendUseSsl) });
    }
    return this.backendInstance;
  }

  /** The backend URL in use: the configured one, or the broker's own store for the embedded brokers. */
  backendUrl(): string | null {
    if (this.conf.backend !== undefined) return this.conf.backend;
    return /^(sqlite|memory):/.test(this.conf.broker) ? this.conf.broker : null;
  }

  /**
   * Revoke a task: broadcast to the workers when the broker can (and they stop it when running,
   * with `terminate`), and leave a mark in the result backend that workers check before starting it.
   */
  async revoke(taskId: string, opts: { terminate?: boolean } = {}): Promise<void> {
    const transport = await this.transport();
    if (transport.broadcast) await this.control.revoke(taskId, opts);
    if (this.backendUrl()) await (await this.backend()).markRevoked(taskId);
  }

  /** Close the broker and backend connections. */
  async close(): Promise<void> {
    const transport = this.transportInstance;
    const backend = this.backendInstance;
    this.transportInstance = undefined;
    this.sentEventDispatcher = undefined;
    this.backendInstance = undefined;
    // The backend first: rpc:// cancels its reply consumer on the broker connection.
    try {
      await backend?.close();
    } finally {
      await transport?.close();
    }
  }

  /** Celery's bugreport: versions, platform and the changed settings, secrets censored (`celeriac report`). */
  bugreport(): string {
    return bugreport(this.conf);
  }

  toString(): string {
    return `<Celery ${this.main}>`;
  }
}
