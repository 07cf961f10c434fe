/**
 * A large envelope read from its bytes (a Redis fetch gives those as bytes) decodes exactly as its
 * text does: every envelope captured from Python Celery 5.2, large ones, and the shapes that must
 * not be read from the bytes (an escaped body, a repeated "body", broken JSON) — those take the
 * text path and give the same message or the same error.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../src/errors.ts';
import { decodeBase64Bytes, splitBody } from '../src/protocol/envelope-bytes.ts';
import { envelopeBytes, fromEnvelope, toEnvelope } from '../src/protocol/envelope.ts';
import { buildTaskMessage, decodeTaskMessage } from '../src/protocol/task-message.ts';
import { findMessages, listFixtures, loadFixture } from './helpers/fixtures.ts';

const fromBytes = (raw: string) => fromEnvelope(Buffer.from(raw, 'utf8'));
const target = { exchange: '', routingKey: 'celery', deliveryTag: 'tag-1' };
const large = (arg: unknown) => toEnvelope(buildTaskMessage({ id: 'big-1', name: 'tasks.echo', args: [arg], origin: 'test@host', replyTo: '' }), target);

function decodeError(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('every captured Redis envelope', () => {
  const envelopes = listFixtures('redis-').flatMap((file) =>
    findMessages(loadFixture(file)).flatMap((f) => (f.kind === 'envelope' ? [{ where: `${file} ${f.where}`, raw: f.raw }] : [])),
  );

  it('is split at its body (unless kombu escaped something in it) and decodes from bytes as from text', () => {
    expect(envelopes.length).toBeGreaterThan(20);
    let split = 0;
    for (const { where, raw } of envelopes) {
      const body = (JSON.parse(raw) as { body: string }).body;
      const escaped = /["\\\u0000-\u001f\u007f-\uffff]/.test(body); // Python's json.dumps escapes these
      expect(splitBody(Buffer.from(raw)) === undefined, where).toBe(escaped);
      if (!escaped) split++;
      expect(fromBytes(raw), where).toEqual(fromEnvelope(raw));
    }
    expect(split).toBeGreaterThan(20);
  });
});

describe('a large envelope from bytes', () => {
  it('gives the task its 300 KB argument, non-ASCII text included', () => {
    const arg = 'é€😀'.repeat(1000) + 'x'.repeat(300_000);
    const raw = large(arg);
    const d = fromBytes(raw);
    expect(d).toEqual(fromEnvelope(raw));
    expect(decodeTaskMessage(d.message).args).toEqual([arg]);
  });

  it('keeps UTF-8 in other members (a header written without ensure_ascii)', () => {
    const raw = large('x'.repeat(100_000)).replace('"headers": {', '"headers": {"note": "naïve ☃", ');
    expect(fromBytes(raw).message.headers.note).toBe('naïve ☃');
    expect(fromBytes(raw)).toEqual(fromEnvelope(raw));
  });

  it('reads an escaped body (\\u0057 from another JSON writer) from the text instead', () => {
    const plain = large('y'.repeat(100_000));
    const raw = plain.replace('"body": "W', '"body": "\\u0057');
    expect(raw.length).toBe(plain.length + 5);
    expect(splitBody(Buffer.from(raw))).toBeUndefined();
    expect(fromBytes(raw)).toEqual(fromEnvelope(raw));
    expect(fromBytes(raw)).toEqual(fromEnvelope(plain));
  });

  it('takes the last of two "body" members, as JSON.parse does', () => {
    const raw = large('z'.repeat(100_000)).replace('{"body": ', '{"body": "e30=", "body": ');
    expect(splitBody(Buffer.from(raw))).toBeUndefined();
    expect(fromBytes(raw)).toEqual(fromEnvelope(raw));
    expect(fromBytes(raw).message.body.length).toBeGreaterThan(100_000);
  });

  it('decodes a base64 body with escaped line breaks, or whitespace among its bytes, as the text path does', () => {
    const raw = large('w'.repeat(100_000)).replace(/"body": "([^"]{76})/, '"body": "$1\\n');
    expect(splitBody(Buffer.from(raw))).toBeUndefined();
    expect(fromBytes(raw)).toEqual(fromEnvelope(raw));
    const wrapped = Buffer.from('A'.repeat(70_000) + '\r\n' + 'QUJD'.repeat(20_000) + 'QQ');
    expect(wrapped.length % 4).toBe(0);
    expect(decodeBase64Bytes(wrapped)).toEqual(Buffer.from(wrapped.toString('latin1'), 'base64'));
    const plain = Buffer.from(Buffer.alloc(200_001, 7).toString('base64'));
    expect(decodeBase64Bytes(plain)).toEqual(Buffer.alloc(200_001, 7));
  });

  it('gives the same errors for what is not an envelope', () => {
    const body = 'x'.repeat(100_000);
    for (const raw of [
      `{"body": "${body}", "headers": {}, "properties": {}`, // unterminated
      `{"body": "${body}", "headers": nope}`,
      `{"body": 12, "pad": "${body}"}`,
      `["${body}"]`,
      `{"headers": {}, "pad": "${body}"}`,
    ]) {
      expect(decodeError(() => fromBytes(raw))).toBe(decodeError(() => fromEnvelope(raw)));
    }
  });

  it('decodes a body without body_encoding (plain text) from its bytes', () => {
    const text = 'v'.repeat(100_000) + ' ☃';
    const raw = `{"body": "${text}", "content-encoding": "utf-8", "content-type": "text/plain", "headers": {"id": "u1"}, "properties": {"delivery_tag": "t"}}`;
    expect(splitBody(Buffer.from(raw))).toBeDefined();
    expect(fromBytes(raw)).toEqual(fromEnvelope(raw));
    expect(fromBytes(raw).message.body.toString()).toBe(text);
  });
});

describe('envelopeBytes', () => {
  it('writes the bytes of toEnvelope\'s text, whatever the body size', () => {
    for (const n of [0, 1, 2, 3, 4, 49_151, 49_152, 49_153, 98_305, 300_001]) {
      const message = buildTaskMessage({ id: `s${n}`, name: 'tasks.echo', args: ['ü'.repeat(n >> 1)], origin: 'tést@host', replyTo: '' });
      message.body = message.body.subarray(0, n);
      expect(envelopeBytes(message, target).equals(Buffer.from(toEnvelope(message, target))), `body of ${n} bytes`).toBe(true);
    }
  });
});
