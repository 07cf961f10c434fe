import { EncodeError } from '../errors.ts';

/**
 * JSON as kombu 5.2 writes it: Python `json.dumps` defaults (separators ", " and ": ",
 * non-ASCII escaped as \uXXXX), dates as ISO strings (UTC as "…Z", microsecond precision
 * only when non-zero). Byte-compatible with what a Python client sends.
 */
export function dumps(value: unknown): string {
  return write(value, []);
}

/** `open`: the arrays and objects being written, outermost first (a short list: a linear scan beats a Set). */
function write(value: unknown, open: object[]): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
      return pyNumber(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'function':
    case 'symbol':
      throw new EncodeError(`Object of type ${typeof value} is not JSON serializable`);
  }
  const obj = value as object;
  if (obj instanceof Date) return quote(isoformat(obj));
  if (Buffer.isBuffer(obj) || obj instanceof Uint8Array) {
    throw new EncodeError('Object of type bytes is not JSON serializable: encode binary data (e.g. base64) before sending it');
  }
  if (open.includes(obj)) throw cycleError(open, obj);
  open.push(obj);
  try {
    if (Array.isArray(obj)) {
      let out = '[';
      for (let i = 0; i < obj.length; i++) out += (i === 0 ? '' : ', ') + write(obj[i], open);
      return out + ']';
    }
    if (obj instanceof Set) return write([...obj], open);
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
      return write((obj as { toJSON(): unknown }).toJSON(), open);
    }
    let out = '';
    if (obj instanceof Map) {
      for (const [k, v] of obj) if (v !== undefined) out += (out ? ', ' : '') + quote(String(k)) + ': ' + write(v, open);
    } else {
      for (const k in obj) {
        const v = (obj as Record<string, unknown>)[k];
        if (v !== undefined && Object.hasOwn(obj, k)) out += (out ? ', ' : '') + quote(k) + ': ' + write(v, open);
      }
    }
    return '{' + out + '}';
  } finally {
    open.pop();
  }
}

/** The error for a cycle: names the path from the root to the value that refers back (`[0][0].self`). */
function cycleError(open: object[], obj: object): EncodeError {
  const chain = [...open, obj];
  const path: (string | number)[] = [];
  for (let i = 0; i + 1 < chain.length; i++) {
    const key = keyOf(chain[i]!, chain[i + 1]!);
    if (key !== undefined) path.push(key); // not found: a toJSON() or Set copy, not a key of its own
  }
  return new EncodeError(`Circular reference detected at ${formatPath(path)}: only JSON data (no cycles) can be sent`, { path });
}

function keyOf(parent: object, child: object): string | number | undefined {
  if (Array.isArray(parent)) {
    const i = parent.indexOf(child);
    return i < 0 ? undefined : i;
  }
  if (parent instanceof Set) return undefined;
  if (parent instanceof Map) {
    for (const [k, v] of parent) if (v === child) return String(k);
    return undefined;
  }
  for (const k in parent) if (Object.hasOwn(parent, k) && (parent as Record<string, unknown>)[k] === child) return k;
  return undefined;
}

/** `[0][1].self["a b"]`: a path as a JS expression, from the value's root. */
export function formatPath(path: readonly (string | number)[], root = ''): string {
  let out = root;
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? (out ? '.' : '') + k : `[${JSON.stringify(k)}]`;
  return out || 'the top level';
}

/**
 * A JS number as Python writes it: integral values as ints (`2`, JS cannot tell `2.0` from `2`),
 * other values as `repr(float)`: same shortest digits as JS, but exponent notation below 1e-4 and
 * from 1e16 up, with a sign and at least two exponent digits (`1e-05`, `1.5e+16`; JS: `0.00001`).
 */
export function pyNumber(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf';
  if (n === 0) return '0';
  const abs = Math.abs(n);
  if (Number.isInteger(n) && abs < 1e16) return String(n);
  if (abs >= 1e-4 && abs < 1e16) return String(n);
  const [mantissa, exp] = n.toExponential().split('e') as [string, string];
  const sign = exp[0] === '-' ? '-' : '+';
  return mantissa + 'e' + sign + exp.replace(/^[+-]/, '').padStart(2, '0');
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/;
// eslint-disable-next-line no-control-regex
const TO_ESCAPE = /["\\\u0000-\u001f\u007f-\uffff]/g;

/** Above this length a string is checked by native scans, not the regex (13% of a 100 KB drain's worker time). */
const LONG_STRING = 1024;
const ASCII_TO_ESCAPE = ['"', '\\', '\x7f', ...Array.from({ length: 32 }, (_, c) => String.fromCharCode(c))];

/** Needs no escape: all ASCII (a UTF-8 byte per char) without any of ASCII_TO_ESCAPE, found by memchr-like scans. */
export function plainLongString(s: string): boolean {
  if (Buffer.byteLength(s, 'utf8') !== s.length) return false;
  for (const c of ASCII_TO_ESCAPE) if (s.includes(c)) return false;
  return true;
}

function quote(s: string): string {
  if (s.length > LONG_STRING ? plainLongString(s) : !NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  return '"' + s.replace(TO_ESCAPE, (c) => ESCAPES[c] ?? '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) + '"';
}

/** Python's `datetime.isoformat()` of an aware UTC datetime, with "+00:00" written as "Z" (kombu 5.2). */
export function isoformat(d: Date, { z = true }: { z?: boolean } = {}): string {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const base = iso.slice(0, 19);
  const ms = d.getUTCMilliseconds();
  const frac = ms === 0 ? '' : '.' + String(ms).padStart(3, '0') + '000';
  return base + frac + (z ? 'Z' : '+00:00');
}

/** Naive UTC ISO string as Celery writes `date_done`. */
export function naiveUtcIso(d: Date): string {
  const ms = d.getTime();
  // Every result stored in the same millisecond has the same date_done: built once.
  if (ms !== lastNaive.ms) lastNaive = { ms, text: isoformat(d).slice(0, -1) };
  return lastNaive.text;
}
let lastNaive = { ms: Number.NaN, text: '' };

/**
 * Parse JSON written by any Celery: kombu 5.2 (plain) and kombu >= 5.3 (`{"__type__", "__value__"}`
 * tags, `kombu/utils/json.py`). Tagged datetimes become `Date`; uuid (`{"hex", "version"}` or a
 * string), decimal, date and time become strings; bytes and base64 become Buffer. Untagged strings
 * stay strings, dates included: kombu 5.2 tags nothing. Python's NaN/Infinity/-Infinity are read as
 * numbers, and integers beyond 2^53 (Python's are unbounded) as `bigint`, so none is rounded.
 * Throws SyntaxError on invalid JSON.
 */
export function loads(text: string): unknown {
  // Fast path: JSON.parse alone. A run of 16 digits may be an integer JSON.parse would round.
  if (!LONG_DIGITS.test(text)) {
    try {
      // The reviver costs a call per value: only kombu >= 5.3 tagged payloads need it.
      return hasTags(text) ? JSON.parse(text, reviveTagged) : JSON.parse(text);
    } catch (err) {
      if (!/NaN|Infinity/.test(text)) throw err;
    }
  }
  return loadsSpecial(text);
}

// Spelt out: V8 runs /\d{16}/ several times slower than sixteen \d (a quantifier defeats its fast scan).
const LONG_DIGITS = /\d\d\d\d\d\d\d\d\d\d\d\d\d\d\d\d/;
const SPECIAL = '\u0000celeriac-number:';
// A string (kept as is), or a number or Python non-finite literal outside strings.
const TOKENS = /"(?:[^"\\]|\\.)*"|-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|-?Infinity|NaN/g;

/** The slow path: unsafe integers and non-finite literals become marker strings, revived as bigint and number. */
function loadsSpecial(text: string): unknown {
  let found = false;
  const json = text.replace(TOKENS, (token, frac: string | undefined, exp: string | undefined) => {
    const c = token.charCodeAt(0);
    if (c === 34 /* " */) return token;
    const number = c !== 78 /* N */ && !token.endsWith('y');
    if (number && (frac !== undefined || exp !== undefined || Number.isSafeInteger(Number(token)))) return token;
    found = true;
    return JSON.stringify(SPECIAL + token);
  });
  if (!found) return hasTags(text) ? JSON.parse(text, reviveTagged) : JSON.parse(text);
  return JSON.parse(json, (k, v) => {
    if (typeof v === 'string' && v.startsWith(SPECIAL)) {
      const token = v.slice(SPECIAL.length);
      return /^-?\d+$/.test(token) ? BigInt(token) : Number(token);
    }
    return reviveTagged(k, v);
  });
}

// The bare word first: V8 finds it several times faster than the quoted one ('"' is everywhere in JSON).
function hasTags(text: string): boolean {
  return text.indexOf('__type__') !== -1 && text.includes('"__type__"');
}

function reviveTagged(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  if (typeof v.__type__ !== 'string' || !('__value__' in v) || Object.keys(v).length !== 2) return value;
  const raw = v.__value__;
  switch (v.__type__) {
    case 'datetime':
      return typeof raw === 'string' ? parsePythonDate(raw) ?? raw : raw;
    case 'uuid':
      return uuidString(raw);
    case 'bytes':
      return typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    case 'base64':
      return typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw;
    default: // decimal, date, time: their str()/isoformat() string
      return raw;
  }
}

/** kombu >= 5.3 writes a UUID as `{"hex": "<32 hex digits>", "version": 4}`; give it back as the usual dashed string. */
function uuidString(raw: unknown): unknown {
  const hex = typeof raw === 'string' ? raw : raw !== null && typeof raw === 'object' ? (raw as { hex?: unknown }).hex : undefined;
  if (typeof hex !== 'string') return raw;
  const h = hex.replace(/^urn:uuid:|[{}-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(h)) return raw;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Parse an ISO-8601 date as Python writes it (naive means UTC, as Celery assumes with `enable_utc`).
 * Digits beyond milliseconds are dropped (a JS Date has millisecond precision).
 * Returns null when the string is not a valid date.
 */
export function parsePythonDate(s: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(s);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', tz] = m;
  const ms = Number(frac.padEnd(3, '0').slice(0, 3));
  const local = Date.UTC(+y!, +mo! - 1, +d!, +h, +mi, +sec, ms);
  const check = new Date(local);
  // Date.UTC silently rolls 2024-02-30 over to March: Python rejects it, so do we
  if (check.getUTCFullYear() !== +y! || check.getUTCMonth() !== +mo! - 1 || check.getUTCDate() !== +d! || +h > 23 || +mi > 59 || +sec > 59) {
    return null;
  }
  let offsetMinutes = 0;
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    offsetMinutes = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || 0));
  }
  return new Date(local - offsetMinutes * 60_000);
}
