/**
 * Messages to and from AMQP 0-9-1 frames, with header field types a Python (py-amqp) peer reads
 * back as the same values.
 *
 * amqplib guesses number types by size (b, s, I, l). py-amqp reads `b` as unsigned, `s` as a
 * short *string* and `l` as unsigned 64-bit, so every number is typed explicitly here, as py-amqp
 * writes them: integers within ±2147483647 as `I`, larger positive ones as 64-bit, everything
 * else (fractions, NaN, ±Infinity, negatives beyond 32 bits, unsafe integers) as a double `d`.
 * In the other direction py-amqp writes big integers with the tag `L`, which amqplib cannot
 * decode (it would drop the connection, and the message would come back forever): header frames
 * are patched before amqplib decodes them (`L` → `l`, same bytes), and a header table that still
 * cannot be decoded yields a delivery the worker rejects as undecodable instead.
 */
import { createRequire } from 'node:module';
import type { ChannelModel, ConsumeMessage, Options } from 'amqplib';
import { undecodableMessage } from '../../protocol/envelope.ts';
import type { DeliveryInfo, Message, MessageProperties } from '../../protocol/message.ts';

const INT32_MAX = 2147483647;

/** A header value typed for amqplib's encoder (its `{'!': type, value}` escape hatch). */
function fieldValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v;
    case 'number':
      return numberValue(v);
    case 'bigint':
      return numberValue(Number(v));
    case 'object':
      break;
    default:
      return String(v);
  }
  if (v instanceof Date) return v.toISOString();
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v) || v instanceof Set) return Array.from(v as Iterable<unknown>, fieldValue);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return fieldValue((v as { toJSON(): unknown }).toJSON());
  const entries = v instanceof Map ? [...v.entries()].map(([k, x]) => [String(k), x] as const) : Object.entries(v);
  // Wrapped, so that a table with a "!" key is not taken for a typed value.
  return { '!': 'object', value: toAmqpTable(Object.fromEntries(entries)) };
}

function numberValue(n: number): unknown {
  if (Number.isInteger(n) && Math.abs(n) <= INT32_MAX) return { '!': 'int', value: n };
  if (Number.isSafeInteger(n) && n > 0) return { '!': 'long', value: n };
  return { '!': 'double', value: n };
}

export function toAmqpTable(table: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(table)) if (v !== undefined) out[k] = fieldValue(v);
  return out;
}

/** amqplib's typed leftovers (timestamps, decimals) as plain values. */
function fromFieldValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
  if (Array.isArray(v)) return v.map(fromFieldValue);
  const o = v as Record<string, unknown>;
  if (o['!'] === 'timestamp' && typeof o.value === 'number') return new Date(o.value * 1000).toISOString();
  if (o['!'] === 'decimal' && o.value && typeof o.value === 'object') {
    const d = o.value as { places: number; digits: number };
    return d.digits / 10 ** d.places;
  }
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromFieldValue(x)]));
}

const PROPERTY_NAMES: [keyof Options.Publish & string, string][] = [
  ['correlationId', 'correlation_id'], ['replyTo', 'reply_to'], ['deliveryMode', 'delivery_mode'], ['priority', 'priority'],
  ['expiration', 'expiration'], ['messageId', 'message_id'], ['timestamp', 'timestamp'], ['type', 'type'], ['userId', 'user_id'], ['appId', 'app_id'],
];

/**
 * Basic properties as py-amqp sends them. Properties AMQP has no field for (Celery's retry leaks
 * `origin`, `replaced_task_nesting`) are dropped, as py-amqp drops them.
 */
export function publishOptions(message: Message): Options.Publish {
  const p = message.properties;
  const opts: Options.Publish = {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
    headers: toAmqpTable(message.headers),
    deliveryMode: typeof p.delivery_mode === 'number' ? p.delivery_mode : 2,
  };
  const o = opts as Record<string, unknown>;
  for (const [amqp, kombu] of PROPERTY_NAMES) {
    if (amqp === 'deliveryMode') continue;
    const v = p[kombu];
    if (v === undefined || v === null) continue; // e.g. priority: absent, not 0
    o[amqp] = amqp === 'priority' || amqp === 'timestamp' ? Number(v) : String(v);
  }
  return opts;
}

/** Set by the frame patch below on a header table amqplib could not decode. */
const HEADER_ERROR = Symbol('amqp header decode error');

export function messageFromAmqp(msg: ConsumeMessage, queue: string): { message: Message; info: DeliveryInfo } {
  const props = msg.properties;
  const raw = (props.headers ?? {}) as Record<string | symbol, unknown>;
  const info: DeliveryInfo = { exchange: msg.fields.exchange, routingKey: msg.fields.routingKey, redelivered: msg.fields.redelivered };
  if (typeof props.priority === 'number') info.priority = props.priority;
  if (raw[HEADER_ERROR] !== undefined) {
    return { message: undecodableMessage(msg.content.toString('utf8'), new Error(`AMQP header table of a message in ${JSON.stringify(queue)}: ${String(raw[HEADER_ERROR])}`)), info };
  }
  const properties: MessageProperties = {};
  const pr = props as unknown as Record<string, unknown>;
  for (const [amqp, kombu] of PROPERTY_NAMES) if (pr[amqp] !== undefined && pr[amqp] !== null) properties[kombu] = pr[amqp];
  return {
    message: {
      headers: fromFieldValue(raw) as Record<string, unknown>,
      properties,
      contentType: typeof props.contentType === 'string' ? props.contentType : 'application/json',
      contentEncoding: typeof props.contentEncoding === 'string' ? props.contentEncoding : 'utf-8',
      body: msg.content,
    },
    info,
  };
}

// ---- header frame patch -------------------------------------------------------------------------

interface RawFrame { type: number; payload: Buffer; rest: Buffer }
interface FrameCodec {
  parseFrame(bin: Buffer): RawFrame | false;
  decodeFrame(frame: RawFrame): { fields?: Record<string | symbol, unknown> } & Record<string, unknown>;
}
const FRAME_HEADER = 2;
const BASIC_CLASS = 60;
const require = createRequire(import.meta.url);
let codec: FrameCodec | undefined;
/** amqplib is loaded on first use: a process on another broker never pays for it. */
const frames = (): FrameCodec => (codec ??= require('amqplib/lib/frame.js') as FrameCodec);
export const amqplib = (): typeof import('amqplib') => require('amqplib') as typeof import('amqplib');

/** Byte size of the value after each tag, or 'long' for a u32-length-prefixed value. */
const FIXED: Record<string, number> = { t: 1, b: 1, B: 1, s: 2, u: 2, U: 2, I: 4, i: 4, l: 8, L: 8, f: 4, d: 8, D: 5, T: 8, V: 0 };

/** Rewrites tags amqplib lacks to its equivalents of the same width, in place; throws on an unknown tag. */
function fixValue(buf: Buffer, at: number): number {
  const tag = String.fromCharCode(buf[at]!);
  if (tag === 'L') buf[at] = 0x6c; // 'l': signed 64-bit for both
  else if (tag === 'U') buf[at] = 0x73; // 's': signed 16-bit in amqplib
  const size = FIXED[tag];
  if (size !== undefined) return at + 1 + size;
  if (!'FASx'.includes(tag)) throw new Error(`unknown field type ${JSON.stringify(tag)}`);
  const len = buf.readUInt32BE(at + 1);
  const start = at + 5;
  if (tag === 'F') fixTable(buf, start, start + len);
  else if (tag === 'A') for (let p = start; p < start + len;) p = fixValue(buf, p);
  return start + len;
}

function fixTable(buf: Buffer, start: number, end: number): void {
  for (let p = start; p < end;) p = fixValue(buf, p + 1 + buf[p]!);
}

/** Offset and length of the headers table in a basic header frame payload, if present. */
function headersAt(payload: Buffer): { at: number; len: number } | undefined {
  if (payload.readUInt16BE(0) !== BASIC_CLASS) return undefined;
  const flags = payload.readUInt16BE(12);
  if (!(flags & 0x2000)) return undefined;
  let at = 14;
  if (flags & 0x8000) at += 1 + payload[at]!;
  if (flags & 0x4000) at += 1 + payload[at]!;
  return { at, len: payload.readUInt32BE(at) };
}

function decodeHeaderFrame(frame: RawFrame): ReturnType<FrameCodec['decodeFrame']> {
  const h = headersAt(frame.payload);
  try {
    if (h) fixTable(frame.payload, h.at + 4, h.at + 4 + h.len);
    return frames().decodeFrame(frame);
  } catch (err) {
    if (!h) throw err;
    // Decode the rest without the table, and say why: the consumer dead-letters the message.
    const p = frame.payload;
    const payload = Buffer.concat([p.subarray(0, h.at), p.subarray(h.at + 4 + h.len)]);
    payload.writeUInt16BE(p.readUInt16BE(12) & ~0x2000, 12);
    const decoded = frames().decodeFrame({ ...frame, payload });
    decoded.fields = { ...decoded.fields, headers: { [HEADER_ERROR]: (err as Error).message } };
    return decoded;
  }
}

/**
 * Route this connection's header frames through decodeHeaderFrame. amqplib keeps its codec in
 * module-private bindings, so the connection's own frame reader is wrapped (only this one).
 */
export function patchHeaderDecoding(model: ChannelModel): void {
  const conn = model.connection as unknown as { rest: Buffer; stream: { read(): Buffer | null }; recvSinceLastCheck: boolean; recvFrame(): unknown };
  conn.recvFrame = function recvFrame(this: typeof conn): unknown {
    for (;;) {
      const frame = frames().parseFrame(this.rest);
      if (frame) {
        this.rest = frame.rest;
        return frame.type === FRAME_HEADER ? decodeHeaderFrame(frame) : frames().decodeFrame(frame);
      }
      const incoming = this.stream.read();
      if (incoming === null) return false;
      this.recvSinceLastCheck = true;
      this.rest = Buffer.concat([this.rest, incoming]);
    }
  };
}

/**
 * Write the frames amqplib queues in one turn with one system call: its muxer writes every frame
 * to the socket separately (a publish, a confirm or an ack each cost one write). Corking the
 * socket around the muxer's pass hands them to the kernel together.
 */
export function coalesceWrites(model: ChannelModel): void {
  const muxer = (model.connection as unknown as { muxer?: { out?: { cork?(): void; uncork?(): void }; _readIncoming?: () => void } }).muxer;
  const out = muxer?.out;
  const pass = muxer?._readIncoming;
  if (!muxer || !out?.cork || !out.uncork || typeof pass !== 'function') return; // another amqplib: leave it as it is
  muxer._readIncoming = function readIncoming(this: unknown): void {
    out.cork!();
    try {
      pass.call(this);
    } finally {
      out.uncork!();
    }
  };
}
