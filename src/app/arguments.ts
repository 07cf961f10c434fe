/**
 * How a request's args and kwargs become the function's arguments. A task that declares its
 * parameter names (`params`) gets keyword arguments by name, as Python does, with Python's
 * TypeError when they do not fit; a task that does not gets them as one trailing object.
 */
import { ConfigurationError } from '../errors.ts';
import { createLogger, type Logger } from '../common/log.ts';
import { parseParams } from './params.ts';
import type { ParamSpec } from './task-options.ts';

interface Slot {
  name: string;
  /** A default given in `params`, used when the caller gives none. */
  value?: { v: unknown };
  /** The function has its own default here: `undefined` is passed and JavaScript applies it. */
  jsDefault: boolean;
}

export interface ArgSpec {
  slots: Slot[];
  index: Map<string, number>;
  rest: boolean;
  /** What Python's messages call the function: `add()`. */
  label: string;
  /** Added to positional counts in messages: Python counts a bound method's `self`. */
  selfCount: number;
}

/** `params: true` reads the names from the function's source, and fails where they are not plain names. */
export function argSpec(taskName: string, fn: (...args: never[]) => unknown, declared: readonly ParamSpec[] | true, bound: boolean): ArgSpec {
  const parsed = parseParams(fn);
  const own = parsed ? parsed.params.slice(bound ? 1 : 0) : [];
  let params: readonly ParamSpec[];
  if (declared === true) {
    if (!parsed || own.some((p) => p.name === null)) {
      throw new ConfigurationError(`task ${JSON.stringify(taskName)}: params: true needs a function whose parameters are plain names; list them instead, e.g. params: ['x', 'y']`);
    }
    params = own.map((p) => p.name!);
  } else {
    params = declared;
  }
  const slots = params.map((p, i): Slot => {
    const jsDefault = own[i]?.hasDefault ?? false;
    return typeof p === 'string' ? { name: p, jsDefault } : { name: p.name, value: { v: p.default }, jsDefault };
  });
  const label = /^[A-Za-z_$][\w$]*$/.test(fn.name) ? fn.name : taskName.slice(taskName.lastIndexOf('.') + 1);
  return { slots, index: new Map(slots.map((s, i) => [s.name, i])), rest: parsed?.rest ?? false, label, selfCount: bound ? 1 : 0 };
}

/** The positional arguments for a task with declared parameters; throws Python's TypeError. */
export function bindByName(spec: ArgSpec, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>): unknown[] {
  const { slots, label } = spec;
  if (!spec.rest && args.length > slots.length) {
    const min = slots.findIndex((s) => s.value || s.jsDefault);
    const most = slots.length + spec.selfCount;
    const least = (min < 0 ? slots.length : min) + spec.selfCount;
    const takes = least === most ? `${most} positional argument${most === 1 ? '' : 's'}` : `from ${least} to ${most} positional arguments`;
    const given = args.length + spec.selfCount;
    throw new TypeError(`${label}() takes ${takes} but ${given} ${given === 1 ? 'was' : 'were'} given`);
  }
  const out = args.slice();
  const filled = new Set<number>();
  for (const key of Object.keys(kwargs)) {
    const i = spec.index.get(key);
    if (i === undefined) throw new TypeError(`${label}() got an unexpected keyword argument '${key}'`);
    if (i < args.length) throw new TypeError(`${label}() got multiple values for argument '${key}'`);
    out[i] = kwargs[key];
    filled.add(i);
  }
  const missing: string[] = [];
  for (let i = args.length; i < slots.length; i++) {
    if (filled.has(i)) continue;
    const slot = slots[i]!;
    if (slot.value) {
      out[i] = slot.value.v;
    } else if (slot.jsDefault) {
      out[i] = undefined;
    } else {
      missing.push(`'${slot.name}'`);
    }
  }
  if (missing.length > 0) {
    const names = missing.length === 1 ? missing[0] : missing.length === 2 ? missing.join(' and ') : `${missing.slice(0, -1).join(', ')}, and ${missing[missing.length - 1]}`;
    throw new TypeError(`${label}() missing ${missing.length} required positional argument${missing.length === 1 ? '' : 's'}: ${names}`);
  }
  // Trailing function defaults stay unset, so that `arguments.length` is what the caller gave.
  while (out.length > args.length && out[out.length - 1] === undefined && slots[out.length - 1]?.jsDefault) out.pop();
  return out;
}

const warned = new Set<string>();
let log: Logger | undefined;

/** Without `params`: keyword arguments come as one trailing object; said once per task name. */
export function trailingKwargs(taskName: string, args: readonly unknown[], kwargs: Record<string, unknown>, logger?: Logger): unknown[] {
  // Celery's builtins (celery.map, …) read request.kwargs themselves.
  if (!warned.has(taskName) && !taskName.startsWith('celery.')) {
    warned.add(taskName);
    (logger ?? (log ??= createLogger({ level: 'WARNING' }))).warning(
      `Task ${taskName} got keyword arguments (${Object.keys(kwargs).join(', ')}); it declares no parameter names, so they are passed as one trailing object argument. ` +
        `Give the task option params (e.g. params: ['x', 'y']) to receive them by name as Python does.`,
    );
  }
  return [...args, kwargs];
}
