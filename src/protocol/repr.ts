/** Python `repr()` of JSON-like values, as Celery writes `argsrepr`/`kwargsrepr` and event fields. */
export function pyRepr(value: unknown, maxLength = 1024): string {
  const s = repr(value);
  return s.length > maxLength ? s.slice(0, maxLength - 3) + '...' : s;
}

function repr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return reprString(v);
  if (v instanceof Date) return reprString(v.toISOString());
  if (Array.isArray(v)) return '[' + v.map(repr).join(', ') + ']';
  if (typeof v === 'object') {
    return '{' + Object.entries(v as object).map(([k, x]) => `${reprString(k)}: ${repr(x)}`).join(', ') + '}';
  }
  return reprString(String(v));
}

function reprString(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replace(/[\\\n\r\t]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!);
  return q + (q === "'" ? body.replace(/'/g, "\\'") : body) + q;
}

/** Celery's argsrepr for a call with positional args: a tuple repr, `(2,)` for one element. */
export function argsRepr(args: unknown[]): string {
  if (args.length === 1) return '(' + repr(args[0]) + ',)';
  return pyRepr(args).replace(/^\[/, '(').replace(/\]$/, ')');
}
