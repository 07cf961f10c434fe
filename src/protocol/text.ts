/**
 * A body's text as its `content-encoding` declares it (kombu decodes with Python's codecs). What does
 * not decode is refused, never run with replacement characters.
 */
import { isUtf8 } from 'node:buffer';
import { DecodeError } from '../errors.ts';
import type { Message } from './message.ts';

const UTF8 = new Set(['utf-8', 'utf8', 'utf_8', 'u8', 'binary', 'ascii-8bit']);
const UTF16 = new Set(['utf-16', 'utf16', 'utf_16', 'utf-16le', 'utf-16be', 'utf_16_le', 'utf_16_be']);
const LATIN1 = new Set(['latin-1', 'latin1', 'latin_1', 'iso-8859-1', 'iso8859-1', 'l1']);
const ASCII = new Set(['ascii', 'us-ascii', '646']);

export function decodeText(body: Buffer, message: Message): string {
  const encoding = (message.contentEncoding || 'utf-8').toLowerCase();
  if (UTF8.has(encoding)) {
    if (!isUtf8(body)) throw new DecodeError('message body is not valid UTF-8 although its content-encoding says utf-8', message);
    return body.toString('utf8');
  }
  if (UTF16.has(encoding)) {
    // Python's utf-16 reads a byte-order mark (little-endian without one); utf-16-le/-be keep it as text.
    const explicit = /[-_](le|be)$/.test(encoding);
    const label = encoding.endsWith('be') || (!explicit && body[0] === 0xfe && body[1] === 0xff) ? 'utf-16be' : 'utf-16le';
    try {
      return new TextDecoder(label, { fatal: true, ignoreBOM: explicit }).decode(body);
    } catch {
      throw new DecodeError(`message body is not valid ${encoding}`, message);
    }
  }
  if (LATIN1.has(encoding)) return body.toString('latin1');
  if (ASCII.has(encoding)) {
    if (body.some((b) => b > 0x7f)) throw new DecodeError('message body is not ASCII although its content-encoding says ascii', message);
    return body.toString('latin1');
  }
  throw new DecodeError(`content-encoding ${JSON.stringify(message.contentEncoding)} is not supported (use utf-8)`, message);
}
