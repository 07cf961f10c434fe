/**
 * kombu's Redis key layout (`kombu/transport/redis.py`), with its transport options:
 *
 *   <prefix><queue>                  list, priority step 0 (LPUSH to publish, pop from the right)
 *   <prefix><queue><sep><step>       list per other priority step (3, 6, 9 by default)
 *   <prefix>_kombu.binding.<exchange> set of "<routing_key><sep><pattern><sep><queue>"
 *   <prefix>unacked                  hash  tag -> [envelope, exchange, routing_key]
 *   <prefix>unacked_index            zset  tag -> delivery time
 *   <prefix>unacked_mutex            lock of the visibility-timeout restore
 *   <prefix><queue>.celeriac.dead    list of dead letters (celeriac only; kombu has none)
 *   <prefix>celeriac.fetch.<id>      what one fetch took, for a minute (celeriac only: a re-sent
 *                                    fetch returns it instead of taking more)
 *   <prefix>celeriac.push.<id>       a publish batch that ran (celeriac only: a re-sent one is skipped)
 *   <prefix>celeriac.holders         hash  delivery tag -> hostname of the celeriac worker holding
 *                                    it (only with workerRestoreLost; kombu never reads it)
 *   <prefix>celeriac.restore_lost.<hostname>  lock: one worker restores a lost worker's messages
 *   <prefix>/<db>.<exchange>[/<rk>]  pub/sub channel of a fanout exchange (kombu's keyprefix_fanout
 *                                    "/{db}." and fanout_patterns; not a key)
 */
import { ConfigurationError } from '../../errors.ts';

export const DEFAULT_STEPS = [0, 3, 6, 9];
const MIN_PRIORITY = 0;
const MAX_PRIORITY = 9;

export class KombuKeys {
  readonly unacked: string;
  readonly unackedIndex: string;
  readonly mutex: string;

  constructor(
    readonly prefix = '',
    readonly sep = '\x06\x16',
    readonly steps: readonly number[] = DEFAULT_STEPS,
    /** kombu's keyprefix_fanout with `{db}` filled in ("/0."), "" when fanout_prefix is off. */
    readonly fanoutPrefix = '/0.',
    /** kombu's fanout_patterns: the routing key is part of the channel name. */
    readonly fanoutPatterns = true,
  ) {
    this.unacked = prefix + 'unacked';
    this.unackedIndex = prefix + 'unacked_index';
    this.mutex = prefix + 'unacked_mutex';
  }

  readonly holders = (): string => `${this.prefix}celeriac.holders`;

  restoreLostLock(hostname: string): string {
    return `${this.prefix}celeriac.restore_lost.${hostname}`;
  }

  fetchRecord(id: string): string {
    return `${this.prefix}celeriac.fetch.${id}`;
  }

  pushRecord(id: string): string {
    return `${this.prefix}celeriac.push.${id}`;
  }

  /** The list holding messages of one priority step (kombu's `_q_for_pri`). */
  list(queue: string, step = 0): string {
    return this.prefix + (step ? `${queue}${this.sep}${step}` : queue);
  }

  /** Every list of the queues: priority-major, queue-minor, as kombu's BRPOP. */
  lists(queues: readonly string[]): string[] {
    return this.steps.flatMap((s) => queues.map((q) => this.list(q, s)));
  }

  binding(exchange: string): string {
    return `${this.prefix}_kombu.binding.${exchange}`;
  }

  bindingMember(routingKey: string, pattern: string, queue: string): string {
    return [routingKey, pattern, queue].join(this.sep);
  }

  /** kombu's `_get_publish_topic`: the channel a fanout message is PUBLISHed on. */
  channel(exchange: string, routingKey: string): string {
    return this.prefix + this.fanoutPrefix + exchange + (routingKey && this.fanoutPatterns ? `/${routingKey}` : '');
  }

  /**
   * kombu's `_get_subscribe_topic`: the PSUBSCRIBE pattern of a binding, `#` → `*` (Redis's `*`
   * also spans dots: coarser than an AMQP topic pattern). Other glob characters of the names are
   * escaped, so they match literally (kombu passes them through).
   */
  pattern(exchange: string, bindingKey: string): string {
    const literal = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');
    const key = bindingKey && this.fanoutPatterns ? `/${bindingKey.replace(/[?[\]\\]/g, '\\$&').replace(/#/g, '*')}` : '';
    return literal(this.prefix + this.fanoutPrefix + exchange) + key;
  }

  /** The routing key a channel of `exchange` carries ("" when none, or not one of its channels). */
  routingKeyOf(exchange: string, channel: string): string {
    const base = this.prefix + this.fanoutPrefix + exchange + '/';
    return channel.startsWith(base) ? channel.slice(base.length) : '';
  }

  dead(queue: string): string {
    return `${this.prefix}${queue}.celeriac.dead`;
  }

  /**
   * The step a message property `priority` maps to: Python's `int()` of it clamped to 0..9
   * (0 when it is not a number), then the largest step ≤ it (`steps[bisect(steps, p) - 1]`,
   * Python's negative index included). Lower steps are consumed first.
   */
  step(priority: unknown): number {
    const p = Math.max(MIN_PRIORITY, Math.min(pyInt(priority) ?? 0, MAX_PRIORITY));
    let i = 0;
    while (i < this.steps.length && this.steps[i]! <= p) i++;
    return this.steps.at(i - 1) ?? 0;
  }
}

/** Python's int(x) for the values a JSON property can hold; undefined where Python raises. */
function pyInt(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'string' && /^\s*[+-]?\d+(_\d+)*\s*$/.test(v)) return Number(v.replace(/_/g, ''));
  return undefined;
}

/** `priority_steps` from code (array) or a URL query ("0,3,6,9"). */
export function parseSteps(value: unknown): number[] {
  if (value === undefined || value === null || value === '') return DEFAULT_STEPS;
  const list = Array.isArray(value) ? value : String(value).replace(/^\[|\]$/g, '').split(',');
  const steps = list.map((s) => Number(s));
  if (steps.length === 0 || steps.some((s) => !Number.isInteger(s) || s < 0) || steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) {
    throw new ConfigurationError(`redis option priority_steps must be increasing non-negative integers, e.g. [0, 3, 6, 9], not ${JSON.stringify(value)}`);
  }
  return steps;
}

/**
 * kombu's keyprefix_fanout: "/{db}." by default; `fanout_prefix` false (or "false", "0") gives "",
 * another string is used as the prefix with `{db}` filled in.
 */
export function fanoutPrefix(option: unknown, db: number): string {
  if (option === undefined || option === null || option === true || option === '' || (typeof option === 'string' && /^(true|1|yes|on)$/i.test(option))) return `/${db}.`;
  if (option === false || option === 0 || (typeof option === 'string' && /^(false|0|no|off)$/i.test(option))) return '';
  if (typeof option === 'string') return option.replace(/\{db\}/g, String(db));
  throw new ConfigurationError(`redis option fanout_prefix must be true, false or a string, not ${JSON.stringify(option)}`);
}

/** A boolean transport option from code or a URL query. */
export function booleanOption(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 1 || (typeof value === 'string' && /^(true|1|yes|on)$/i.test(value))) return true;
  if (value === 0 || (typeof value === 'string' && /^(false|0|no|off)$/i.test(value))) return false;
  throw new ConfigurationError(`redis option ${name} must be true or false, not ${JSON.stringify(value)}`);
}

export type QueueOrder = 'round_robin' | 'priority' | 'sorted';

export function parseQueueOrder(value: unknown): QueueOrder {
  const v = String(value ?? 'round_robin');
  if (v === 'round_robin' || v === 'priority' || v === 'sorted') return v;
  throw new ConfigurationError(`redis option queue_order_strategy must be round_robin, priority or sorted, not ${JSON.stringify(value)}`);
}
