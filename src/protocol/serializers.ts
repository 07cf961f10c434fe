import { DecodeError, EncodeError } from '../errors.ts';
import { dumps, loads } from './json.ts';
import { decompressBody } from './compression.ts';
import { undecodableReason } from './envelope.ts';
import type { Message } from './message.ts';
import { decodeText } from './text.ts';

/** The serializers celeriac speaks. pickle and yaml are deliberately absent (unsafe). */
export const SERIALIZERS = {
  json: { contentType: 'application/json', contentEncoding: 'utf-8' },
} as const;

export type SerializerName = keyof typeof SERIALIZERS;

export function isSerializer(name: string): name is SerializerName {
  return Object.hasOwn(SERIALIZERS, name);
}

export function encodeBody(value: unknown, serializer: string): Pick<Message, 'contentType' | 'contentEncoding' | 'body'> {
  if (!isSerializer(serializer)) {
    throw new EncodeError(`serializer ${JSON.stringify(serializer)} is not supported; use one of: ${Object.keys(SERIALIZERS).join(', ')}`);
  }
  const s = SERIALIZERS[serializer];
  return { contentType: s.contentType, contentEncoding: s.contentEncoding, body: Buffer.from(dumps(value), 'utf8') };
}

export function decodeBody(message: Message): unknown {
  const type = message.contentType;
  const broken = undecodableReason(message);
  if (broken !== undefined) throw new DecodeError(broken, message);
  if (type !== 'application/json' && type !== 'json') {
    throw new DecodeError(`content type ${JSON.stringify(type)} is not supported (only application/json is accepted)`, message);
  }
  const text = bodyText(message);
  try {
    return loads(text);
  } catch (err) {
    throw new DecodeError(`message body is not valid JSON: ${(err as Error).message}`, message, { cause: err });
  }
}

/** A message body as text: decompressed per its `compression` header, decoded per its content-encoding. */
export function bodyText(message: Message): string {
  return decodeText(decompressBody(message), message);
}
