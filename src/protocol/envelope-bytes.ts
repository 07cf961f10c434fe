/**
 * A large envelope read from its bytes. Its base64 body is nearly all of it: as text, the whole
 * envelope and then the body string JSON.parse copies out of it would each be a string of over
 * 128 KiB for a 100 KB argument, which V8 allocates page by page in its large-object space. Here
 * only the rest of the envelope becomes text, and the body is decoded straight from its bytes.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** Base64 characters decoded per step: a multiple of 4, each step's text in V8's young space. */
const BASE64_STEP = 64 * 1024;

export interface SplitEnvelope {
  /** The envelope as JSON text with `"body": ""`. */
  text: string;
  /** The body string's content, given as bytes (no escapes in it). */
  body: Buffer;
}

/**
 * The envelope's text without its top-level "body" string, and that string's bytes; undefined
 * when the body is not a plain string member found once, a top-level key has escapes, or the
 * text is not an object: the caller then reads the whole text, which reports what is wrong.
 */
export function splitBody(raw: Buffer): SplitEnvelope | undefined {
  // The first backslash at or after a position, found again only once passed: one scan in all.
  let bs = raw.indexOf(BACKSLASH);
  const escaped = (from: number, to: number): boolean => {
    if (bs !== -1 && bs < from) bs = raw.indexOf(BACKSLASH, from);
    return bs !== -1 && bs < to;
  };
  try {
    let i = skipWs(raw, 0);
    if (raw[i] !== 0x7b) return undefined;
    i = skipWs(raw, i + 1);
    let found: [number, number] | undefined;
    while (raw[i] !== 0x7d) {
      if (raw[i] !== QUOTE) return undefined;
      const keyEnd = stringEnd(raw, i);
      if (escaped(i, keyEnd)) return undefined;
      const isBody = keyEnd - i === 6 && raw.toString('latin1', i + 1, i + 5) === 'body';
      i = skipWs(raw, keyEnd);
      if (raw[i] !== 0x3a) return undefined;
      i = skipWs(raw, i + 1);
      const end = valueEnd(raw, i);
      if (isBody) {
        if (found || raw[i] !== QUOTE || escaped(i, end)) return undefined;
        found = [i + 1, end - 1];
      }
      i = skipWs(raw, end);
      if (raw[i] === 0x2c) i = skipWs(raw, i + 1);
      else if (raw[i] !== 0x7d) return undefined;
    }
    if (!found || skipWs(raw, i + 1) !== raw.length) return undefined;
    const [from, to] = found;
    return { text: raw.toString('utf8', 0, from) + raw.toString('utf8', to), body: raw.subarray(from, to) };
  } catch {
    return undefined;
  }
}

/** Base64 text given as bytes, decoded in steps; as Buffer.from(text, 'base64') would. */
export function decodeBase64Bytes(text: Buffer): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil(text.length / 4) * 3);
  let n = 0;
  for (let at = 0; at < text.length; at += BASE64_STEP) n += out.write(text.toString('latin1', at, Math.min(text.length, at + BASE64_STEP)), n, 'base64');
  // Decoding in steps gives the same bytes only when no character was skipped (whitespace, a
  // stray `=`): then the length is exactly that of plain base64. Otherwise decode it whole.
  const pad = text[text.length - 1] === 0x3d ? (text[text.length - 2] === 0x3d ? 2 : 1) : 0;
  if (text.length % 4 === 0 && n === (text.length / 4) * 3 - pad) return out.subarray(0, n);
  return Buffer.from(text.toString('latin1'), 'base64');
}

function skipWs(b: Buffer, i: number): number {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  return i;
}

/** End (exclusive) of the string whose opening quote is at `i`: the first quote after an even run of backslashes. */
function stringEnd(b: Buffer, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, from);
    if (q === -1) throw new SyntaxError('unterminated string');
    let k = q - 1;
    while (k > i && b[k] === BACKSLASH) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** End (exclusive) of the JSON value starting at `i`; strings are skipped whole. */
function valueEnd(b: Buffer, i: number): number {
  const c = b[i];
  if (c === QUOTE) return stringEnd(b, i);
  if (c !== 0x7b && c !== 0x5b) {
    let j = i;
    while (j < b.length && b[j] !== 0x2c && b[j] !== 0x7d && b[j] !== 0x5d && b[j] !== 0x20 && b[j] !== 0x0a && b[j] !== 0x0d && b[j] !== 0x09) j++;
    if (j === i) throw new SyntaxError(`unexpected byte at ${i}`);
    return j;
  }
  let depth = 0;
  for (let j = i; j < b.length; j++) {
    const d = b[j];
    if (d === QUOTE) j = stringEnd(b, j) - 1;
    else if (d === 0x7b || d === 0x5b) depth++;
    else if ((d === 0x7d || d === 0x5d) && --depth === 0) return j + 1;
  }
  throw new SyntaxError('unterminated container');
}
