/**
 * The `rpc://` result backend (Celery's `celery/backends/rpc.py: RPCBackend`), over the app's
 * own RabbitMQ connection: results are not stored, they are sent as messages to the client that
 * sent the task.
 *
 * - Worker: each state (STARTED, RETRY, SUCCESS, FAILURE, REVOKED, custom ones) is published to
 *   the default exchange '' with routing key = the request's `reply_to` (the client's oid),
 *   correlation_id = the request's correlation id (or the task id), delivery_mode 1, body
 *   `{task_id, status, result, traceback, children}`. A request without reply_to sends nothing.
 *   The worker declares nothing: the queue is the client's.
 * - Client: before sending a task whose result it wants, it declares its reply queue as Celery
 *   does (`Queue(oid, Exchange(None), oid, durable=False, auto_delete=True, expires=result_expires)`
 *   → x-expires = result_expires × 1000 ms, typed as py-amqp types it), so a Python client and a
 *   celeriac one declare the same queue the same way, and consumes it (no ack). Every state is
 *   kept by task id (replies.ts), whichever order they come in, until read.
 * - A result reaches only the client that sent the task; chords and saved groups need a stored
 *   result and are refused (Celery's E_NO_CHORD_SUPPORT).
 */
import { CeleriacError, ConfigurationError, UnsupportedByBackend } from '../../errors.ts';
import type { TaskState } from '../../protocol/states.ts';
import type { Broadcasting, ExchangeSpec, Subscription, SubscriptionSpec, Transport } from '../../transport/types.ts';
import type { ResultBackend, StoreOptions, TaskMeta } from '../result-backend.ts';
import type { ChordProgress } from '../types.ts';
import { metaFromReply, Replies, replyMessage } from './replies.ts';

/** The AMQP default exchange: routes to the queue named by the routing key (kombu's `Exchange(None)`). */
export const DEFAULT_EXCHANGE: ExchangeSpec = { name: '', type: 'direct' };

const FIX = "use a result backend that stores results: backend: 'redis://host:6379/1' (or 'sqlite://celeriac.db' on one machine)";

export interface RpcBackendOptions {
  /** The app's broker URL: rpc:// sends results through it, so it must be amqp:// or amqps://. */
  broker: string;
  /** This client's oid: the name of its reply queue and the reply_to of what it sends. */
  oid: string;
  /** `result_expires` in seconds: the idle reply queue is deleted after it (x-expires); null: never. */
  expires: number | null;
  /** The app's broker connection (shared with publishing and the worker). */
  transport: () => Promise<Transport>;
  log?: { warning(message: string): void };
}

export function isRpcUrl(url: string | null | undefined): boolean {
  return typeof url === 'string' && /^rpc:/i.test(url);
}

export class RpcBackend implements ResultBackend {
  readonly url = 'rpc://';
  private readonly replies = new Replies();
  private consuming: Promise<Subscription> | undefined;
  private closed = false;

  constructor(private readonly opts: RpcBackendOptions) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(opts.broker)?.[1]?.toLowerCase();
    if (scheme !== 'amqp' && scheme !== 'amqps') {
      throw new ConfigurationError(
        `result backend rpc:// sends results as messages through the broker, which must then be RabbitMQ (amqp:// or amqps://); ` +
          `the broker is ${scheme ?? opts.broker}://. With this broker, ${FIX}`,
      );
    }
  }

  /** Kombu's `RPCBackend.binding`, as a subscription on the default exchange. */
  get replyQueue(): SubscriptionSpec {
    const spec: SubscriptionSpec = { exchange: DEFAULT_EXCHANGE, bindingKey: this.opts.oid, queue: this.opts.oid };
    const expires = this.opts.expires;
    if (expires) spec.expiresMs = Math.trunc(expires) * 1000; // prepare_expires(type=int), then seconds → ms
    return spec;
  }

  async storeResult(taskId: string, result: unknown, state: TaskState, opts: StoreOptions = {}): Promise<void> {
    // Celery's destination_for: no reply_to, nobody to tell.
    if (!opts.replyTo) return;
    const broadcast = await this.broadcast();
    await broadcast.publishExchange(DEFAULT_EXCHANGE, opts.replyTo, replyMessage(taskId, result, state, opts));
  }

  /** Declare and consume the reply queue before a task is sent (Celery's `on_task_call`). */
  async onTaskCall(replyTo: string): Promise<void> {
    if (replyTo === this.opts.oid) await this.consume();
  }

  async getTaskMeta(taskId: string): Promise<TaskMeta> {
    await this.consume();
    return this.replies.waitForReady(taskId, 0);
  }

  async getTaskMetas(taskIds: readonly string[]): Promise<TaskMeta[]> {
    await this.consume();
    return Promise.all(taskIds.map((id) => this.replies.waitForReady(id, 0)));
  }

  async waitForReady(taskId: string, timeoutMs: number, signal?: AbortSignal): Promise<TaskMeta> {
    await this.consume();
    return this.replies.waitForReady(taskId, timeoutMs, signal);
  }

  async forget(taskId: string): Promise<void> {
    this.replies.forget(taskId);
  }

  /** Revokes travel by broadcast on RabbitMQ: no mark to leave. */
  async markRevoked(): Promise<void> {}

  async revokedAmong(): Promise<Set<string>> {
    return new Set();
  }

  ensureChordsAllowed(): never {
    throw new UnsupportedByBackend(
      'the rpc:// result backend does not support chords (Celery: "The rpc result backend does not support chords!"); ' +
        'a group chained with a task is upgraded to a chord too, as it needs synchronization. ' +
        `Results sent by rpc:// reach only the client that sent the task, so no worker can join them: ${FIX}`,
    );
  }

  saveGroup(): Promise<void> {
    return this.noGroups('save');
  }

  restoreGroup(): Promise<unknown> {
    return this.noGroups('restore');
  }

  deleteGroup(): Promise<void> {
    return this.noGroups('delete');
  }

  async setChordSize(): Promise<void> {
    this.ensureChordsAllowed();
  }

  async addToChord(): Promise<void> {
    this.ensureChordsAllowed();
  }

  async addChordPart(): Promise<ChordProgress> {
    return this.ensureChordsAllowed();
  }

  async chordParts(): Promise<string[]> {
    return this.ensureChordsAllowed();
  }

  async deleteChord(): Promise<void> {
    this.ensureChordsAllowed();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.replies.wakeAll();
    const consuming = this.consuming;
    this.consuming = undefined;
    await consuming?.then((sub) => sub.close(), () => undefined);
  }

  private warn(message: string): void {
    const log = this.opts.log;
    if (log && typeof log.warning === 'function') log.warning(message);
    else process.stderr.write(`[celeriac] ${message}\n`);
  }

  private noGroups(what: string): Promise<never> {
    return Promise.reject(new UnsupportedByBackend(`the rpc:// result backend cannot ${what} groups (GroupResult.${what}): it stores nothing. To ${what} groups, ${FIX}`));
  }

  private async broadcast(): Promise<Broadcasting> {
    if (this.closed) throw new CeleriacError('the rpc:// result backend is closed');
    const transport = await this.opts.transport();
    if (!transport.broadcast) throw new ConfigurationError(`result backend rpc:// needs a broker with exchanges (amqp://); ${FIX}`);
    return transport.broadcast;
  }

  /** Declare the reply queue and consume it, once (the transport consumes it again after a reconnection). */
  private consume(): Promise<Subscription> {
    if (!this.consuming) {
      const p = this.broadcast().then((b) => b.subscribe(this.replyQueue, (message) => {
        const meta = metaFromReply(message);
        if (meta) this.replies.received(meta);
        else this.warn(`rpc:// reply queue ${this.opts.oid}: dropped a message that is not a task state (${message.contentType})`);
      }));
      p.catch(() => {
        if (this.consuming === p) this.consuming = undefined;
      });
      this.consuming = p;
    }
    return this.consuming;
  }
}
