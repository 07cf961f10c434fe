/**
 * Edits of stored JSON text that keep every other byte as it was. Re-serializing a parsed
 * envelope would not: JS cannot tell 2.0 from 2, loses integers beyond 2^53, and reorders
 * integer-like keys. kombu re-serializes with Python's json, which reproduces its own output, so
 * inserting into the original text gives exactly what kombu writes.
 */
import { loads } from '../../protocol/json.ts';

interface Member {
  key: string;
  /** Start and end (exclusive) of the value text. */
  start: number;
  end: number;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  return i;
}

function stringEnd(s: string, i: number): number {
  let j = i + 1;
  while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
  if (j >= s.length) throw new SyntaxError('unterminated string');
  return j + 1;
}

/** End (exclusive) of the JSON value starting at `i`. */
function valueEnd(s: string, i: number): number {
  const c = s[i];
  if (c === '"') return stringEnd(s, i);
  if (c !== '{' && c !== '[') {
    const m = /^[^,\]}\s]+/.exec(s.slice(i, i + 400));
    if (!m) throw new SyntaxError(`unexpected ${JSON.stringify(c)} at ${i}`);
    return i + m[0].length;
  }
  let depth = 0;
  for (let j = i; j < s.length; j++) {
    const d = s[j];
    if (d === '"') j = stringEnd(s, j) - 1;
    else if (d === '{' || d === '[') depth++;
    else if ((d === '}' || d === ']') && --depth === 0) return j + 1;
  }
  throw new SyntaxError('unterminated container');
}

/** The members of the object whose `{` is at `i`. */
function members(s: string, i: number): Member[] {
  const out: Member[] = [];
  let j = skipWs(s, i + 1);
  if (s[j] === '}') return out;
  for (;;) {
    if (s[j] !== '"') throw new SyntaxError(`expected a key at ${j}`);
    const keyEnd = stringEnd(s, j);
    const key = JSON.parse(s.slice(j, keyEnd)) as string;
    j = skipWs(s, keyEnd);
    if (s[j] !== ':') throw new SyntaxError(`expected ':' at ${j}`);
    const start = skipWs(s, j + 1);
    const end = valueEnd(s, start);
    out.push({ key, start, end });
    j = skipWs(s, end);
    if (s[j] === '}') return out;
    if (s[j] !== ',') throw new SyntaxError(`expected ',' at ${j}`);
    j = skipWs(s, j + 1);
  }
}

interface Edit {
  at: number;
  end: number;
  text: string;
}

/** The edit that makes `"redelivered": true` a member of the object at `start`. */
function setTrue(s: string, start: number): Edit {
  const ms = members(s, start);
  const found = ms.find((m) => m.key === 'redelivered');
  if (found) return { at: found.start, end: found.end, text: 'true' };
  const last = ms.at(-1);
  return last ? { at: last.end, end: last.end, text: ', "redelivered": true' } : { at: start + 1, end: start + 1, text: '"redelivered": true' };
}

/**
 * kombu's `_do_restore_message`: `headers.redelivered = true`, then
 * `properties.delivery_info.redelivered = true` (stopping at the first missing level). Text that
 * is not an envelope object comes back unchanged.
 */
export function markRedelivered(raw: string): string {
  try {
    const top = skipWs(raw, 0);
    if (raw[top] !== '{') return raw;
    const env = members(raw, top);
    const edits: Edit[] = [];
    const headers = env.find((m) => m.key === 'headers');
    if (!headers || raw[headers.start] !== '{') return raw;
    edits.push(setTrue(raw, headers.start));
    const props = env.find((m) => m.key === 'properties');
    const info = props && raw[props.start] === '{' ? members(raw, props.start).find((m) => m.key === 'delivery_info') : undefined;
    if (info && raw[info.start] === '{') edits.push(setTrue(raw, info.start));
    let out = raw;
    for (const e of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, e.at) + e.text + out.slice(e.end);
    return out;
  } catch {
    return raw;
  }
}

export interface UnackedEntry {
  /** The message text to push back: the envelope as stored (or the raw string kept for undecodable ones). */
  message: string;
  exchange: string;
  routingKey: string;
}

/** Split an `unacked` value `[envelope, exchange, routing_key]`; null when it is not one. */
export function parseUnackedEntry(entry: string): UnackedEntry | null {
  try {
    const open = skipWs(entry, 0);
    if (entry[open] !== '[') return null;
    const start = skipWs(entry, open + 1);
    const end = valueEnd(entry, start);
    const parsed = loads(entry);
    if (!Array.isArray(parsed) || parsed.length < 3) return null;
    const [m, exchange, routingKey] = parsed as [unknown, unknown, unknown];
    const text = entry.slice(start, end);
    return {
      message: typeof m === 'string' ? m : text,
      exchange: typeof exchange === 'string' ? exchange : '',
      routingKey: typeof routingKey === 'string' ? routingKey : '',
    };
  } catch {
    return null;
  }
}
