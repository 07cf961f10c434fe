/**
 * A long string argument goes to ioredis as UTF-8 bytes. As a string, ioredis measures it,
 * concatenates it into the command text (a copy that V8 puts in its large-object space past
 * 128 KiB) and the socket encodes that again; as bytes it is encoded once and copied once.
 */
const LONG_ARG = 16 * 1024;

export function redisArg(value: string | Buffer): string | Buffer {
  return typeof value !== 'string' || value.length < LONG_ARG ? value : Buffer.from(value, 'utf8');
}
