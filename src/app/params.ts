/**
 * A task function's parameters, read from its source (JavaScript keeps no argument spec), for
 * what Celery decides from `inspect.getfullargspec`: whether an errback takes the failed request
 * (`arity_greater(fn, 1)`), and which parameters have defaults when keywords are bound by name.
 */

export interface Param {
  /** null for a destructured parameter. */
  name: string | null;
  hasDefault: boolean;
}

export interface FnParams {
  params: Param[];
  /** A `...rest` parameter (Python's `*args`), not counted in `params`. */
  rest: boolean;
}

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** The declared parameters of `fn`, or null when its source does not show them (native, bound). */
export function parseParams(fn: (...args: never[]) => unknown): FnParams | null {
  let src: string;
  try {
    src = Function.prototype.toString.call(fn);
  } catch {
    return null;
  }
  if (/\[native code\]\s*\}\s*$/.test(src)) return null;
  const single = /^(?:async\s*)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (single) return { params: [{ name: single[1]!, hasDefault: false }], rest: false };
  const open = src.indexOf('(');
  if (open < 0) return null;
  const parts: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open + 1; i < src.length; i++) {
    const c = src[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(src, i);
    } else if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i < 0) return null;
    } else if (c === '/' && src[i + 1] === '*') {
      i = src.indexOf('*/', i + 2) + 1;
      if (i <= 0) return null;
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) {
        parts.push(src.slice(start, i));
        break;
      }
      depth--;
    } else if (c === ',' && depth === 0) {
      parts.push(src.slice(start, i));
      start = i + 1;
    }
  }
  const texts = parts.map((p) => stripComments(p).trim()).filter((p) => p !== '');
  const out: FnParams = { params: [], rest: false };
  for (const text of texts) {
    if (text.startsWith('...')) {
      out.rest = true;
      continue;
    }
    const eq = topLevelDefault(text);
    const head = (eq < 0 ? text : text.slice(0, eq)).trim();
    out.params.push({ name: IDENT.test(head) ? head : null, hasDefault: eq >= 0 });
  }
  return out;
}

/** Celery's `arity_greater(fn, n)`: more than n declared parameters, or a rest parameter. */
export function arityGreater(fn: (...args: never[]) => unknown, n: number): boolean {
  const p = parseParams(fn);
  if (!p) return fn.length > n;
  return p.rest || p.params.length > n;
}

function skipString(src: string, i: number): number {
  const quote = src[i];
  for (i++; i < src.length; i++) {
    if (src[i] === '\\') i++;
    else if (src[i] === quote) return i;
  }
  return i;
}

function stripComments(s: string): string {
  return s.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** Index of a parameter's default `=` (not `==`, `=>`, nor inside a destructuring pattern). */
function topLevelDefault(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`') i = skipString(text, i);
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === '=' && depth === 0 && text[i + 1] !== '=' && text[i + 1] !== '>' && text[i - 1] !== '=' && text[i - 1] !== '!') return i;
  }
  return -1;
}
