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
  ) {
    this.unacked = prefix + 'unacked';
    this.unackedIndex = prefix + 'unacked_index';
    this.mutex = prefix + 'unacked_mutex';
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

export type QueueOrder = 'round_robin' | 'priority' | 'sorted';

export function parseQueueOrder(value: unknown): QueueOrder {
  const v = String(value ?? 'round_robin');
  if (v === 'round_robin' || v === 'priority' || v === 'sorted') return v;
  throw new ConfigurationError(`redis option queue_order_strategy must be round_robin, priority or sorted, not ${JSON.stringify(value)}`);
}
