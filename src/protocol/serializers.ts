import { DecodeError, EncodeError } from '../errors.ts';
import { dumps, loads } from './json.ts';
import { decompressBody } from './compression.ts';
import { undecodableReason } from './envelope.ts';
import type { Message } from './message.ts';
import { decodeText } from './text.ts';

/** A body codec, as kombu's serialization registry holds them. */
export interface Serializer {
  contentType: string;
  contentEncoding: string;
  encode(value: unknown): Buffer;
  /** `text` is the body decompressed and decoded per its content-encoding. */
  decode(text: string, message: Message): unknown;
}

const json: Serializer = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  encode: (value) => Buffer.from(dumps(value), 'utf8'),
  decode(text, message) {
    try {
      return loads(text);
    } catch (err) {
      throw new DecodeError(`message body is not valid JSON: ${(err as Error).message}`, message, { cause: err });
    }
  },
};

/** The serializers celeriac speaks by name; pickle and yaml are deliberately absent (unsafe). `auth` joins once security is set up. */
const registry = new Map<string, Serializer>([['json', json]]);
const names = new Map<string, string>([['application/json', 'json'], ['json', 'json'], ['application/data', 'auth']]);

export function registerSerializer(name: string, serializer: Serializer): void {
  registry.set(name, serializer);
  names.set(serializer.contentType, name);
}

/** The names a serializer option accepts (`auth` only where the app sets up message signing). */
export const SERIALIZER_NAMES: readonly string[] = ['json', 'auth'];

export function isSerializer(name: string): boolean {
  return SERIALIZER_NAMES.includes(name);
}

export function encodeBody(value: unknown, serializer: string): Pick<Message, 'contentType' | 'contentEncoding' | 'body'> {
  const s = registry.get(serializer);
  if (!s) {
    if (serializer === 'auth') throw new EncodeError('serializer "auth" signs messages: set securityKey, securityCertificate and securityCertStore, then call app.setupSecurity()');
    throw new EncodeError(`serializer ${JSON.stringify(serializer)} is not supported; use one of: ${SERIALIZER_NAMES.join(', ')}`);
  }
  return { contentType: s.contentType, contentEncoding: s.contentEncoding, body: s.encode(value) };
}

/** The serializer name of a content type (`application/json` -> json), or the content type itself. */
export function serializerName(contentType: string): string {
  return names.get(contentType) ?? contentType;
}

/**
 * Decode a message body by its content type. With `accept` (Celery's accept_content: names or
 * content types), anything else is refused before it is read, as kombu refuses it.
 */
export function decodeBody(message: Message, accept?: readonly string[]): unknown {
  const type = message.contentType;
  const broken = undecodableReason(message);
  if (broken !== undefined) throw new DecodeError(broken, message);
  const name = serializerName(type);
  const s = registry.get(name);
  if (!s) {
    if (name === 'auth') throw new DecodeError('the message is signed (auth serializer) but this app has no security set up to verify it: see app.setupSecurity()', message);
    throw new DecodeError(`content type ${JSON.stringify(type)} is not supported (only application/json is accepted)`, message);
  }
  if (accept && !accept.includes(name) && !accept.includes(type)) {
    throw new DecodeError(`Refusing to deserialize untrusted content of type ${name} (${type}): this app accepts ${accept.join(', ')} (acceptContent)`, message);
  }
  return s.decode(bodyText(message), message);
}

/** A message body as text: decompressed per its `compression` header, decoded per its content-encoding. */
export function bodyText(message: Message): string {
  return decodeText(decompressBody(message), message);
}
