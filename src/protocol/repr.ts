import { pyNumber } from './json.ts';

/**
 * Python `repr()` of JSON-like values, as Celery writes `argsrepr`/`kwargsrepr` and event fields,
 * cut to `maxLength` (ending in `...`). Building stops just past the limit: a 5 MB argument costs
 * no more than a short one.
 */
export function pyRepr(value: unknown, maxLength = 1024): string {
  const out = new Out(maxLength);
  repr(value, out);
  return out.result();
}

/** The text built so far; `full` once past the limit, after which appends are dropped. */
class Out {
  s = '';
  /** The containers being written, so a cycle is written as Python does (`[[...]]`, `{'a': {...}}`). */
  readonly open: object[] = [];
  constructor(readonly max: number) {}
  get full(): boolean {
    return this.s.length > this.max;
  }
  add(text: string): void {
    if (!this.full) this.s += text.length > this.max + 1 ? text.slice(0, this.max + 1) : text;
  }
  result(): string {
    return this.full ? this.s.slice(0, Math.max(0, this.max - 3)) + '...' : this.s;
  }
}

function repr(v: unknown, out: Out): void {
  if (out.full) return;
  if (v === null || v === undefined) return out.add('None');
  if (v === true) return out.add('True');
  if (v === false) return out.add('False');
  if (typeof v === 'number') return out.add(pyNumber(v));
  if (typeof v === 'bigint') return out.add(v.toString());
  if (typeof v === 'string') return reprString(v, out);
  if (v instanceof Date) return out.add(reprDate(v));
  if (typeof v === 'object') {
    const isArray = Array.isArray(v);
    if (out.open.includes(v)) return out.add(isArray ? '[...]' : '{...}');
    out.open.push(v);
    try {
      if (isArray) return items(v, out, '[', ']', (x) => repr(x, out));
      return items(Object.keys(v), out, '{', '}', (k) => {
        reprString(k, out);
        out.add(': ');
        repr((v as Record<string, unknown>)[k], out);
      });
    } finally {
      out.open.pop();
    }
  }
  reprString(String(v), out);
}

function items<T>(list: readonly T[], out: Out, open: string, close: string, each: (x: T) => void): void {
  out.add(open);
  for (let i = 0; i < list.length && !out.full; i++) {
    if (i > 0) out.add(', ');
    each(list[i]!);
  }
  out.add(close);
}

/**
 * Python's `str.__repr__`: single quotes unless the text has a ' and no ", backslash escapes for
 * \\ \t \n \r, \xNN / \uNNNN / \UNNNNNNNN for what `str.isprintable()` rejects (control, format,
 * unassigned, surrogate and separator characters but the space); printable non-ASCII stays as is.
 */
function reprString(s: string, out: Out): void {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  out.add(q);
  let chunk = '';
  for (const ch of s) {
    if (ch === '\\') chunk += '\\\\';
    else if (ch === q) chunk += '\\' + q;
    else if (ch === '\n') chunk += '\\n';
    else if (ch === '\r') chunk += '\\r';
    else if (ch === '\t') chunk += '\\t';
    else if (ch !== ' ' && /^[\p{C}\p{Z}]$/u.test(ch)) chunk += hexEscape(ch.codePointAt(0)!);
    else chunk += ch;
    if (chunk.length >= 256) {
      out.add(chunk);
      chunk = '';
      if (out.full) return;
    }
  }
  out.add(chunk + q);
}

function hexEscape(cp: number): string {
  if (cp < 0x100) return '\\x' + cp.toString(16).padStart(2, '0');
  if (cp < 0x10000) return '\\u' + cp.toString(16).padStart(4, '0');
  return '\\U' + cp.toString(16).padStart(8, '0');
}

/** `repr()` of an aware UTC datetime: `datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.timezone.utc)`. */
function reprDate(d: Date): string {
  if (Number.isNaN(d.getTime())) return "'Invalid Date'";
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
  const out = new Out(1024);
  items(args, out, '(', args.length === 1 ? ',)' : ')', (x) => repr(x, out));
  return out.result();
}
