/**
 * One AMQP connection at a time, re-established with backoff after any loss.
 *
 * A Session is one connection with its channels: `pub` (publisher confirms), `con` (consumers,
 * acks, qos) and a lazily opened `admin` channel for declarations and queue stats, whose channel
 * errors (404 no such queue, 406 inequivalent arguments) are expected and close only it. Losing
 * the connection, `pub` or `con` ends the session: deliveries made on it can no longer be
 * settled (RabbitMQ gives them to a consumer again), and a new session is opened, restored by the
 * transport's `onSession` (declarations, qos, consumers) before anyone else may use it.
 */
import type { Channel, ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { CeleriacError } from '../../errors.ts';
import { BrokerConnectionError } from '../connect-error.ts';
import { explainTlsError } from '../tls.ts';
import type { AmqpSettings } from './options.ts';
import { amqplib, coalesceWrites, patchHeaderDecoding } from './wire.ts';

const MAX_BACKOFF_MS = 5000;

export class Session {
  alive = true;
  /** Why the connection or one of its channels ended, once known. */
  reason: Error | undefined;
  /** Declarations done on this connection (queue, route, dead-letter queue), by key. */
  readonly declared = new Map<string, Promise<void>>();
  private adminChannel: Promise<Channel> | undefined;
  private adminTail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly gen: number,
    readonly model: ChannelModel,
    readonly pub: ConfirmChannel,
    readonly con: Channel,
  ) {}

  /** Run one operation on the admin channel; operations run one at a time (a failure closes the channel). */
  admin<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    const run = this.adminTail.then(async () => fn(await this.adminOpen()));
    this.adminTail = run.catch(() => undefined);
    return run;
  }

  private adminOpen(): Promise<Channel> {
    if (!this.alive) return Promise.reject(new CeleriacError('AMQP connection closed'));
    if (this.adminChannel) return this.adminChannel;
    const p = this.model.createChannel().then((ch) => {
      ch.on('error', () => undefined); // reported through the failed operation
      ch.on('close', () => {
        if (this.adminChannel === p) this.adminChannel = undefined;
      });
      return ch;
    });
    p.catch(() => {
      if (this.adminChannel === p) this.adminChannel = undefined;
    });
    this.adminChannel = p;
    return p;
  }
}

/** The reply code of a channel or connection error (404, 406, 320…), if any. */
export function amqpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export class Link {
  private session: Session | undefined;
  private connecting: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private gen = 0;
  private attempts = 0;
  /** Why the broker is unreachable; undefined while connected or before the first attempt ends. */
  private lastError: Error | undefined;
  private outage = false;
  private closed = false;
  /** Connected once: until then a failed attempt fails the callers waiting for it (startup). */
  private everConnected = false;
  private failures = 0;
  /** What ended the link before it ever connected, when retrying cannot help (a refused login). */
  private fatal: BrokerConnectionError | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly settings: AmqpSettings,
    /** Restore a new session (declare, consume); a failure counts as a failed connection attempt. */
    private readonly onSession: (s: Session) => Promise<void>,
    private readonly onLost: (s: Session) => void,
  ) {}

  get current(): Session | undefined {
    return this.session;
  }

  /** The session, connecting if needed and waiting at most `waitMs` for the broker. */
  async ready(waitMs: number): Promise<Session> {
    this.assertOpen();
    if (this.session) return this.session;
    if (this.fatal) throw this.fatal;
    const failuresBefore = this.failures;
    this.start();
    return new Promise<Session>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const check = () => {
        if (this.session) {
          done();
          resolve(this.session);
        } else if (this.closed) {
          done();
          reject(this.closedError());
        } else if (this.fatal || (!this.everConnected && this.failures > failuresBefore)) {
          // Never connected: the attempt's reason is the caller's error, not a wait of waitMs.
          done();
          reject(this.fatal ?? new BrokerConnectionError(this.settings.url, this.lastError?.message ?? 'connection closed', true));
        }
      };
      const timer = setTimeout(() => {
        done();
        const why = this.lastError ? ` (${this.lastError.message})` : '';
        reject(new BrokerConnectionError(this.settings.url, `unreachable for ${Math.round(waitMs / 100) / 10} s${why}`, true));
      }, waitMs);
      this.waiters.add(check);
    });
  }

  /** The session now; during an outage, an error at once (a first connection attempt is waited for). */
  async now(): Promise<Session> {
    this.assertOpen();
    if (!this.session && !this.lastError) {
      this.start();
      await this.connecting;
    }
    if (this.session) return this.session;
    this.start();
    throw new CeleriacError(`AMQP broker ${this.settings.url} unreachable (${this.lastError?.message ?? 'closed'}); reconnecting`);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const w of [...this.waiters]) w();
    await this.connecting;
    const s = this.session;
    this.session = undefined;
    if (s) {
      s.alive = false;
      await withTimeout(s.model.close(), 2000).catch(() => undefined);
    }
  }

  private start(): void {
    if (this.connecting || this.session || this.closed || this.retryTimer) return;
    this.connecting = this.attempt().finally(() => {
      this.connecting = undefined;
    });
  }

  private async attempt(): Promise<void> {
    let model: ChannelModel | undefined;
    try {
      model = await amqplib().connect(this.settings.connect, this.settings.socket);
      patchHeaderDecoding(model);
      coalesceWrites(model);
      const m = model;
      m.on('error', () => undefined); // 'close' follows with the reason
      // A resource alarm (memory, disk): publishes wait for their confirms meanwhile.
      m.on('blocked', (reason: string) => this.settings.log.warning(`AMQP broker ${this.settings.url} blocks publishing: ${reason}`));
      m.on('unblocked', () => this.settings.log.info(`AMQP broker ${this.settings.url} accepts publishing again`));
      const s = new Session(++this.gen, m, await m.createConfirmChannel(), await m.createChannel());
      for (const part of [m, s.pub, s.con]) {
        part.on('error', (err: Error) => (s.reason ??= err));
        part.on('close', (err?: Error) => {
          s.reason ??= err;
          this.lost(s, () => s.reason);
        });
      }
      await this.onSession(s);
      if (!s.alive) throw s.reason ?? new Error('connection closed while restoring');
      if (this.closed) {
        s.alive = false;
        await m.close().catch(() => undefined);
        return;
      }
      this.session = s;
      this.everConnected = true;
      this.attempts = 0;
      this.lastError = undefined;
      if (this.outage) this.settings.log.info(`AMQP broker ${this.settings.url}: reconnected`);
      this.outage = false;
      for (const w of [...this.waiters]) w();
    } catch (err) {
      model?.close().catch(() => undefined);
      this.failed(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private failed(failure: Error): void {
    const err = explainTlsError(failure);
    this.lastError = err;
    this.failures++;
    if (this.closed) return;
    const why = this.everConnected ? undefined : startupFailure(err);
    if (why) {
      // Retrying cannot help: stop, and say why to every caller.
      this.fatal = new BrokerConnectionError(this.settings.url, why, false);
      for (const w of [...this.waiters]) w();
      return;
    }
    for (const w of [...this.waiters]) w();
    if (!this.outage) this.settings.log.warning(`AMQP broker ${this.settings.url}: cannot connect (${err.message}); retrying`);
    this.outage = true;
    const delay = Math.min(100 * 2 ** this.attempts++, MAX_BACKOFF_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.start();
    }, delay);
    this.retryTimer.unref();
  }

  private lost(s: Session, reason: () => Error | undefined): void {
    if (!s.alive) return;
    s.alive = false;
    const wasCurrent = this.session === s;
    if (wasCurrent) this.session = undefined;
    s.model.close().catch(() => undefined); // when only a channel died
    this.onLost(s);
    if (!wasCurrent || this.closed) return; // a session still restoring fails its attempt instead
    const provisional = reason() ?? new Error('connection closed');
    this.lastError = provisional;
    const first = !this.outage;
    this.outage = true;
    // Channels report their end before the connection says why: read the reason a tick later.
    setImmediate(() => {
      const why = reason() ?? provisional;
      if (this.lastError === provisional) this.lastError = why;
      if (first) this.settings.log.warning(`AMQP broker ${this.settings.url}: connection lost (${why.message}); reconnecting`);
      this.start();
    });
  }

  private assertOpen(): void {
    if (this.closed) throw this.closedError();
  }

  private closedError(): CeleriacError {
    return new CeleriacError(`transport ${this.settings.url} is closed`);
  }
}

/** Why a first connection cannot succeed by retrying (a refused login, an untrusted certificate). */
function startupFailure(err: Error): string | undefined {
  const m = err.message.split('\n')[0]!;
  if (/ACCESS.REFUSED|\b403\b/.test(m)) return `authentication failed (${m.replace(/^Handshake terminated by server: /, '')}); check the user name and password in the URL`;
  return explainTlsError(err) !== err || m.startsWith('TLS: ') ? m : undefined;
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** basic.publish on the confirm channel; resolves once RabbitMQ confirmed it. */
export function confirmPublish(s: Session, exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConfirm = (err: unknown) => {
      if (err) reject(err instanceof Error && /nack/i.test(err.message) ? new CeleriacError(`AMQP broker refused the message (basic.nack) for ${JSON.stringify(routingKey)}`) : err);
      else resolve();
    };
    try {
      s.pub.publish(exchange, routingKey, content, options, onConfirm);
    } catch (err) {
      // amqplib registers the confirm callback before encoding: take it back, or every later
      // confirm on this channel would settle the publish before it.
      const window = (s.pub as unknown as { unconfirmed?: unknown[] }).unconfirmed;
      if (window?.[window.length - 1] === onConfirm) window.pop();
      if (err instanceof RangeError) {
        const kb = Math.ceil(Buffer.byteLength(JSON.stringify(options.headers ?? {})) / 1024);
        reject(new CeleriacError(`the headers of the message are too large for AMQP (${kb} KB; the limit is 64 KB): shorten large header values such as argsrepr`));
      } else reject(err);
    }
  });
}
