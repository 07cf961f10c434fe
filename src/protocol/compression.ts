/**
 * kombu's message compression: the body is compressed after serialising and the method's mime
 * type goes in the `compression` header. kombu's "application/x-gzip" is zlib's format (zlib.compress),
 * not gzip's; bz2, lzma and zstd have no codec in Node 20, so such messages are refused by name.
 */
import { brotliCompressSync, brotliDecompressSync, deflateSync, inflateSync } from 'node:zlib';
import { DecodeError, EncodeError } from '../errors.ts';
import type { Message } from './message.ts';

interface Codec {
  compress(body: Buffer): Buffer;
  decompress(body: Buffer): Buffer;
}

const CODECS: Record<string, Codec> = {
  'application/x-gzip': { compress: (b) => deflateSync(b), decompress: (b) => inflateSync(b) },
  'application/x-brotli': { compress: (b) => brotliCompressSync(b), decompress: (b) => brotliDecompressSync(b) },
};

const ALIASES: Record<string, string> = {
  zlib: 'application/x-gzip',
  gzip: 'application/x-gzip',
  brotli: 'application/x-brotli',
};

const KOMBU_ONLY: Record<string, string> = {
  'application/x-bz2': 'bzip2', bzip2: 'bzip2', bzip: 'bzip2',
  'application/x-lzma': 'lzma', lzma: 'lzma', xz: 'lzma',
  'application/zstd': 'zstd', zstd: 'zstd', zstandard: 'zstd',
};

/** The names a `compression` option accepts. */
export const COMPRESSIONS: readonly string[] = [...Object.keys(ALIASES), ...Object.keys(CODECS)];

/** The mime type for a compression name or mime type, or undefined when celeriac has no codec for it. */
export function compressionType(name: string): string | undefined {
  const type = ALIASES[name] ?? name;
  return Object.hasOwn(CODECS, type) ? type : undefined;
}

function unsupported(name: string): string {
  const kombu = KOMBU_ONLY[name];
  return kombu
    ? `compression ${JSON.stringify(name)} (${kombu}) has no codec in Node.js; use zlib or brotli, which Python's kombu reads too`
    : `compression ${JSON.stringify(name)} is unknown; use one of: ${COMPRESSIONS.join(', ')}`;
}

/** Compress a serialised body: the new body and the value of the `compression` header. */
export function compressBody(body: Buffer, name: string): { body: Buffer; header: string } {
  const type = compressionType(name);
  if (type === undefined) throw new EncodeError(unsupported(name));
  return { body: CODECS[type]!.compress(body), header: type };
}

/** The body of a message as its serializer reads it: decompressed when its `compression` header says so. */
export function decompressBody(message: Message): Buffer {
  const header = message.headers.compression;
  if (header === undefined || header === null) return message.body;
  if (typeof header !== 'string') throw new DecodeError(`compression header must be a string, not ${JSON.stringify(header)}`, message);
  const type = compressionType(header);
  if (type === undefined) throw new DecodeError(unsupported(header), message);
  try {
    return CODECS[type]!.decompress(message.body);
  } catch (err) {
    throw new DecodeError(`message body is not valid ${type} data: ${(err as Error).message}`, message, { cause: err });
  }
}
