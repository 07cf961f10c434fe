import { EncodeError } from '../errors.ts';

/**
 * JSON as kombu 5.2 writes it: Python `json.dumps` defaults (separators ", " and ": ",
 * non-ASCII escaped as \uXXXX), dates as ISO strings (UTC as "…Z", microsecond precision
 * only when non-zero). Byte-compatible with what a Python client sends.
 */
export function dumps(value: unknown): string {
  return write(value, new Set());
}

function write(value: unknown, seen: Set<object>): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
      return String(value);
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
  if (seen.has(obj)) throw new EncodeError('Circular reference detected');
  seen.add(obj);
  try {
    if (Array.isArray(obj) || obj instanceof Set) {
      return '[' + Array.from(obj as Iterable<unknown>, (v) => write(v, seen)).join(', ') + ']';
    }
    if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
      return write((obj as { toJSON(): unknown }).toJSON(), seen);
    }
    const entries = obj instanceof Map ? [...obj.entries()] : Object.entries(obj);
    const parts: string[] = [];
    for (const [k, v] of entries) {
      if (v === undefined) continue;
      parts.push(quote(String(k)) + ': ' + write(v, seen));
    }
    return '{' + parts.join(', ') + '}';
  } finally {
    seen.delete(obj);
  }
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

function quote(s: string): string {
  // eslint-disable-next-line no-control-regex
  return '"' + s.replace(/["\\\u0000-\u001f\u007f-\uffff]/g, (c) => ESCAPES[c] ?? '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) + '"';
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
  const frac = '.' + String(d.getUTCMilliseconds()).padStart(3, '0') + '000';
  return d.toISOString().slice(0, 19) + frac;
}

/**
 * Parse JSON written by any Celery: kombu 5.2 (plain) and kombu >= 5.3 (`{"__type__", "__value__"}`
 * tags). Tagged datetimes become `Date`; other tagged values become their plain JSON value
 * (uuid and decimal as strings, bytes as Buffer). Python's NaN/Infinity are accepted.
 */
export function loads(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, reviveTagged);
  } catch (err) {
    if (!/NaN|Infinity/.test(text)) throw err;
    parsed = JSON.parse(text.replace(/(?<=[[:,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, '"__celeriac_num__$1"'), (k, v) =>
      reviveTagged(k, typeof v === 'string' && v.startsWith('__celeriac_num__') ? Number(v.slice(16)) : v),
    );
  }
  return parsed;
}

function reviveTagged(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const v = value as Record<string, unknown>;
  if (typeof v.__type__ !== 'string' || !('__value__' in v) || Object.keys(v).length !== 2) return value;
  const raw = v.__value__;
  switch (v.__type__) {
    case 'datetime':
      return typeof raw === 'string' ? parsePythonDate(raw) ?? raw : raw;
    case 'bytes':
      return typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    default:
      return raw;
  }
}

/**
 * Parse an ISO-8601 date as Python writes it (naive means UTC, as Celery assumes with `enable_utc`).
 * Returns null when the string is not a date.
 */
export function parsePythonDate(s: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(s);
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', tz] = m;
  let ms = Date.UTC(+y!, +mo! - 1, +d!, +h, +mi, +sec, frac ? Math.floor(Number('0.' + frac) * 1000) : 0);
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    ms -= sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
  }
  return Number.isNaN(ms) ? null : new Date(ms);
}
