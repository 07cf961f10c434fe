import type { Celery } from '../app/celery.ts';
import { ConfigurationError } from '../errors.ts';
import { type CallOptions, Mailbox, type Replies } from './mailbox.ts';

export interface InspectOptions {
  destination?: string[];
  /** Seconds to wait for replies (default 1). */
  timeout?: number;
}

/** `app.control`: remote control of the cluster's workers (Celery's `celery.app.control.Control`). */
export class Control {
  private mailbox: Mailbox | undefined;

  constructor(private readonly app: Celery) {}

  private async box(): Promise<Mailbox> {
    if (this.mailbox) return this.mailbox;
    const transport = await this.app.transport();
    if (!transport.broadcast) {
      throw new ConfigurationError(`broker ${transport.url} has no exchanges (its transport sets no "broadcast"): remote control needs them, as every built-in broker has`);
    }
    this.mailbox = new Mailbox(transport.broadcast, this.app.oid);
    return this.mailbox;
  }

  /** Send a command to workers and collect `{node: reply}` answers. */
  async broadcast(command: string, args: Record<string, unknown> = {}, opts: CallOptions = {}): Promise<Replies> {
    return (await this.box()).call(command, args, opts);
  }

  /** Revoke tasks on every worker; with `terminate`, running ones are stopped and marked REVOKED. */
  async revoke(taskId: string | string[], opts: { terminate?: boolean; signal?: string; reply?: boolean; timeout?: number } = {}): Promise<Replies> {
    return this.broadcast('revoke', { task_id: taskId, terminate: opts.terminate ?? false, signal: opts.signal ?? 'SIGTERM' }, { reply: opts.reply ?? false, timeout: opts.timeout });
  }

  ping(opts: InspectOptions = {}): Promise<Replies> {
    return this.broadcast('ping', {}, opts);
  }

  inspect(opts: InspectOptions = {}): Inspect {
    return new Inspect(this, opts);
  }
}

/** `app.control.inspect()`: the read-only commands, each merged into one `{node: reply}` object. */
export class Inspect {
  constructor(
    private readonly control: Control,
    private readonly opts: InspectOptions,
  ) {}

  async call(command: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const replies = await this.control.broadcast(command, args, this.opts);
    return Object.assign({}, ...replies);
  }

  ping = () => this.call('ping');
  active = (safe = false) => this.call('active', { safe });
  reserved = () => this.call('reserved');
  scheduled = () => this.call('scheduled');
  registered = () => this.call('registered');
  stats = () => this.call('stats');
  revoked = () => this.call('revoked');
  queryTask = (...ids: string[]) => this.call('query_task', { ids });
  conf = () => this.call('conf');
  report = () => this.call('report');
  activeQueues = () => this.call('active_queues');
  clock = () => this.call('clock');
}
