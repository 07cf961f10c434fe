import { pyNumber } from './json.ts';

/** Python `repr()` of JSON-like values, as Celery writes `argsrepr`/`kwargsrepr` and event fields. */
export function pyRepr(value: unknown, maxLength = 1024): string {
  return truncate(repr(value, maxLength + 1), maxLength);
}

/**
 * The repr, or a prefix of it longer than `budget` (then truncated anyway): like Celery's saferepr,
 * a 5 MB argument costs no more than a short one.
 */
function repr(v: unknown, budget: number): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return reprString(v, budget);
  if (v instanceof Date) return reprDate(v);
  if (Array.isArray(v)) return joined('[', v.length, (i, b) => repr(v[i], b), ']', budget);
  if (typeof v === 'object') {
    const keys = Object.keys(v as object);
    return joined('{', keys.length, (i, b) => `${reprString(keys[i]!, b)}: ${repr((v as Record<string, unknown>)[keys[i]!], b)}`, '}', budget);
  }
  return reprString(String(v), budget);
}

/** `open item, item, … close`, stopping once longer than `budget`. */
function joined(open: string, n: number, item: (i: number, budget: number) => string, close: string, budget: number): string {
  let out = open;
  for (let i = 0; i < n; i++) {
    if (out.length > budget) return out;
    out += (i > 0 ? ', ' : '') + item(i, budget - out.length);
  }
  return out + close;
}

/**
 * Python's `str.__repr__`: single quotes unless the text has a ' and no ", backslash escapes for
 * \\ \t \n \r, \xNN / \uNNNN / \UNNNNNNNN for what `str.isprintable()` rejects (control, format,
 * unassigned, surrogate and separator characters but the space); printable non-ASCII stays as is.
 */
function reprString(s: string, budget = Infinity): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    if (out.length > budget) return q + out;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /^[\p{C}\p{Z}]$/u.test(ch)) out += hexEscape(ch.codePointAt(0)!);
    else out += ch;
  }
  return q + out + q;
}

function hexEscape(cp: number): string {
  if (cp < 0x100) return '\\x' + cp.toString(16).padStart(2, '0');
  if (cp < 0x10000) return '\\u' + cp.toString(16).padStart(4, '0');
  return '\\U' + cp.toString(16).padStart(8, '0');
}

/** `repr()` of an aware UTC datetime: `datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc)`. */
function reprDate(d: Date): string {
  if (Number.isNaN(d.getTime())) return reprString('Invalid Date');
  const parts = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds() * 1000];
  // Python drops a zero microsecond, then (only then) a zero second
  if (parts[6] === 0) {
    parts.pop();
    if (parts[5] === 0) parts.pop();
  }
  return `datetime.datetime(${parts.join(', ')}, tzinfo=datetime.timezone.utc)`;
}

/** Celery's argsrepr for a call with positional args: a tuple repr, `(2,)` for one element; max 1024 chars. */
export function argsRepr(args: unknown[]): string {
  return truncate(joined('(', args.length, (i, b) => repr(args[i], b), args.length === 1 ? ',)' : ')', 1025));
}

function truncate(s: string, maxLength = 1024): string {
  return s.length > maxLength ? s.slice(0, maxLength - 3) + '...' : s;
}
