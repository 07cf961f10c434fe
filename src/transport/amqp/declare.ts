/**
 * The entities Celery 5 declares for a task queue (kombu's Queue(name, Exchange(name, 'direct'),
 * routing_key=name)), so Python and celeriac share queues: a durable direct exchange named like
 * the queue, the durable queue (no arguments, or x-max-priority when configured, as Celery's
 * task_queue_max_priority), bound with routing key = queue name.
 *
 * An entity that already exists with other settings (a queue declared with x-max-priority, a
 * quorum queue, an exchange of another type) makes RabbitMQ close the channel with 406
 * PRECONDITION_FAILED: it is then used as it is, checked passively, with a warning naming the
 * mismatch in RabbitMQ's words. Each declaration runs once per connection.
 */
import { amqpCode, type Session } from './connection.ts';
import type { LineLogger } from './options.ts';
import type { ExchangeSpec, SubscriptionSpec } from '../types.ts';
import { toAmqpTable } from './wire.ts';

export interface DeclareContext {
  url: string;
  maxPriority: number | undefined;
  log: LineLogger;
  /** Mismatches already reported (once per transport, not once per connection). */
  warned: Set<string>;
}

const PRECONDITION_FAILED = 406;
const NOT_FOUND = 404;

/** Run `fn` once per session for `key`; a failure is forgotten, so the next call tries again. */
function once(s: Session, key: string, fn: () => Promise<void>): Promise<void> {
  let p = s.declared.get(key);
  if (!p) {
    p = fn();
    s.declared.set(key, p);
    p.catch(() => s.declared.delete(key));
  }
  return p;
}

/** Forget what was declared for a queue (e.g. it was deleted: RabbitMQ cancelled its consumer). */
export function forgetQueue(s: Session, queue: string): void {
  s.declared.delete(`queue\0${queue}`);
}

export function declareTaskQueue(s: Session, queue: string, ctx: DeclareContext): Promise<void> {
  return once(s, `queue\0${queue}`, async () => {
    await tolerant(ctx, `exchange ${JSON.stringify(queue)} (direct, durable)`,
      () => s.admin((ch) => ch.assertExchange(queue, 'direct', { durable: true, autoDelete: false, internal: false })),
      () => s.admin((ch) => ch.checkExchange(queue)));
    const args = ctx.maxPriority === undefined ? {} : toAmqpTable({ 'x-max-priority': ctx.maxPriority });
    const wanted = ctx.maxPriority === undefined ? 'durable, no arguments' : `durable, x-max-priority ${ctx.maxPriority}`;
    await tolerant(ctx, `queue ${JSON.stringify(queue)} (${wanted})`,
      () => s.admin((ch) => ch.assertQueue(queue, { durable: true, autoDelete: false, exclusive: false, arguments: args })),
      () => s.admin((ch) => ch.checkQueue(queue)));
    await s.admin((ch) => ch.bindQueue(queue, queue, queue));
  });
}

/**
 * A message for `queue` published to another exchange must reach it: bind the queue with the
 * routing key (Celery declares such bindings from its Queue definitions). A missing exchange is
 * declared direct and durable, Celery's default exchange type.
 */
export function declareRoute(s: Session, exchange: string, routingKey: string, queue: string): Promise<void> {
  return once(s, `route\0${exchange}\0${routingKey}\0${queue}`, async () => {
    try {
      await s.admin((ch) => ch.checkExchange(exchange));
    } catch (err) {
      if (amqpCode(err) !== NOT_FOUND) throw err;
      await s.admin((ch) => ch.assertExchange(exchange, 'direct', { durable: true, autoDelete: false }));
    }
    await s.admin((ch) => ch.bindQueue(queue, exchange, routingKey));
  });
}

/** `<queue>.celeriac.dead`: a plain durable queue, reached through the default exchange. */
export function declareDeadLetterQueue(s: Session, dead: string, ctx: DeclareContext): Promise<void> {
  return once(s, `dead\0${dead}`, () =>
    tolerant(ctx, `queue ${JSON.stringify(dead)} (durable, no arguments)`,
      () => s.admin((ch) => ch.assertQueue(dead, { durable: true, autoDelete: false, exclusive: false })),
      () => s.admin((ch) => ch.checkQueue(dead))));
}

async function tolerant(ctx: DeclareContext, what: string, declare: () => Promise<unknown>, check: () => Promise<unknown>): Promise<void> {
  try {
    await declare();
  } catch (err) {
    if (amqpCode(err) !== PRECONDITION_FAILED) throw err;
    await check();
    const said = (err as Error).message.replace(/^.*?PRECONDITION_FAILED - /, '');
    if (ctx.warned.has(what)) return;
    ctx.warned.add(what);
    ctx.log.warning(`AMQP broker ${ctx.url}: ${what} exists with other settings (${said}); using the existing one as it is`);
  }
}

/**
 * A broadcast exchange as Celery declares it (celeryev: topic, durable; celery.pidbox: fanout;
 * reply.celery.pidbox: direct; neither durable). Once per connection.
 */
export function declareExchange(s: Session, spec: ExchangeSpec, ctx: DeclareContext): Promise<void> {
  // The default exchange '' always exists and cannot be declared (RabbitMQ: 403 ACCESS_REFUSED).
  if (spec.name === '') return Promise.resolve();
  const durable = spec.durable ?? true;
  const autoDelete = spec.autoDelete ?? false;
  return once(s, `exchange\0${spec.name}`, () =>
    tolerant(ctx, `exchange ${JSON.stringify(spec.name)} (${spec.type}${durable ? ', durable' : ''}${autoDelete ? ', auto-delete' : ''})`,
      () => s.admin((ch) => ch.assertExchange(spec.name, spec.type, { durable, autoDelete, internal: false })),
      () => s.admin((ch) => ch.checkExchange(spec.name))));
}

/**
 * A subscriber's private queue as kombu declares it for pidbox and event receivers: not durable,
 * auto-delete, `x-message-ttl` / `x-expires` (typed `I`, as py-amqp writes them), bound to its
 * exchange with the binding key ('' for fanout; none on the default exchange '', as for the
 * rpc:// reply queue). Once per connection.
 */
export function declareSubscriptionQueue(s: Session, spec: SubscriptionSpec, ctx: DeclareContext): Promise<void> {
  return once(s, `queue\0${spec.queue}`, async () => {
    await declareExchange(s, spec.exchange, ctx);
    const args: Record<string, unknown> = {};
    if (spec.messageTtlMs !== undefined) args['x-message-ttl'] = Math.round(spec.messageTtlMs);
    if (spec.expiresMs !== undefined) args['x-expires'] = Math.round(spec.expiresMs);
    await tolerant(ctx, `queue ${JSON.stringify(spec.queue)} (auto-delete, ${JSON.stringify(args)})`,
      () => s.admin((ch) => ch.assertQueue(spec.queue, { durable: false, autoDelete: true, exclusive: false, arguments: toAmqpTable(args) })),
      () => s.admin((ch) => ch.checkQueue(spec.queue)));
    // On the default exchange every queue is bound by its name already (and cannot be bound again).
    if (spec.exchange.name === '') return;
    const key = spec.exchange.type === 'fanout' ? '' : spec.bindingKey;
    await s.admin((ch) => ch.bindQueue(spec.queue, spec.exchange.name, key));
  });
}
