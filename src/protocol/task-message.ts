import { DecodeError, EncodeError } from '../errors.ts';
import { dumps, formatPath, isoformat, parsePythonDate } from './json.ts';
import type { Message } from './message.ts';
import { argsRepr, pyRepr } from './repr.ts';
import { compressBody } from './compression.ts';
import { decodeBody, encodeBody } from './serializers.ts';

/** A signature in Celery's dict form (`celery/canvas.py: Signature`). */
export interface SignatureDict {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  chord_size?: number | null;
}

export interface Embed {
  callbacks: SignatureDict[] | null;
  errbacks: SignatureDict[] | null;
  chain: SignatureDict[] | null;
  chord: SignatureDict | null;
}

/** Everything a worker needs to know about one task message, whatever protocol it came in. */
export interface TaskRequest {
  protocol: 1 | 2;
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  embed: Embed;
  eta: Date | null;
  expires: Date | null;
  retries: number;
  /** [hard, soft] in seconds, as on the wire. */
  timelimit: [number | null, number | null];
  rootId: string | null;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  shadow: string | null;
  origin: string | null;
  ignoreResult: boolean;
  argsrepr: string;
  kwargsrepr: string;
  replyTo: string | null;
  correlationId: string | null;
  /** All message headers, including custom ones. */
  headers: Record<string, unknown>;
}

export interface TaskMessageFields {
  id: string;
  name: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  embed?: Partial<Embed>;
  eta?: Date | null;
  expires?: Date | null;
  retries?: number;
  timeLimit?: number | null;
  softTimeLimit?: number | null;
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  shadow?: string | null;
  origin: string;
  ignoreResult?: boolean;
  replyTo: string;
  priority?: number;
  /** Custom headers, merged flat into the header table as Celery does. */
  headers?: Record<string, unknown>;
  /** Extra AMQP-style properties (Celery's retry leaks `origin`, `replaced_task_nesting`). */
  properties?: Record<string, unknown>;
  serializer?: string;
  /** kombu's compression: zlib (application/x-gzip) or brotli. */
  compression?: string | null;
}

/** Build a Celery protocol v2 task message, field for field as Celery 5.2's `as_task_v2`. */
export function buildTaskMessage(f: TaskMessageFields): Message {
  const args = f.args ?? [];
  const kwargs = f.kwargs ?? {};
  const embed: Embed = {
    callbacks: f.embed?.callbacks ?? null,
    errbacks: f.embed?.errbacks ?? null,
    chain: f.embed?.chain ?? null,
    chord: f.embed?.chord ?? null,
  };
  const { contentType, contentEncoding, body } = encodeTaskBody([args, kwargs, embed], f.serializer ?? 'json');
  const headers: Record<string, unknown> = {
    lang: 'py',
    task: f.name,
    id: f.id,
    shadow: f.shadow ?? null,
    eta: f.eta ? isoformat(f.eta, { z: false }) : null,
    expires: f.expires ? isoformat(f.expires, { z: false }) : null,
    group: f.group ?? null,
    group_index: f.groupIndex ?? null,
    retries: f.retries ?? 0,
    timelimit: [f.timeLimit ?? null, f.softTimeLimit ?? null],
    root_id: f.rootId ?? f.id,
    parent_id: f.parentId ?? null,
    argsrepr: argsRepr(args),
    kwargsrepr: pyRepr(kwargs),
    origin: f.origin,
    ignore_result: f.ignoreResult ?? false,
    ...f.headers,
  };
  // Key order is kombu's: Celery's own properties (correlation_id, reply_to, then any extra
  // options such as the `replaced_task_nesting`/`origin` a retry leaks), then Producer.publish adds
  // delivery_mode and expiration [cap redis-task-worker-retry-republished.json].
  const properties: Record<string, unknown> = {
    correlation_id: f.id,
    reply_to: f.replyTo,
    ...f.properties,
    delivery_mode: f.properties?.delivery_mode ?? 2,
  };
  if (f.expires) properties.expiration = String(Math.max(0, f.expires.getTime() - Date.now()));
  properties.priority = f.priority ?? 0;
  if (!f.compression) return { headers, properties, contentType, contentEncoding, body };
  const packed = compressBody(body, f.compression);
  headers.compression = packed.header;
  return { headers, properties, contentType, contentEncoding, body: packed.body };
}

/** encodeBody, with a cycle named from the task's arguments (`args[0].self`, `kwargs.x`). */
function encodeTaskBody(body: [unknown[], Record<string, unknown>, Embed], serializer: string): ReturnType<typeof encodeBody> {
  try {
    return encodeBody(body, serializer);
  } catch (err) {
    const path = err instanceof EncodeError ? err.path : undefined;
    if (!path || (path[0] !== 0 && path[0] !== 1)) throw err;
    const where = formatPath(path.slice(1), path[0] === 0 ? 'args' : 'kwargs');
    throw new EncodeError(`cannot send the task: circular reference at ${where}; task arguments must be JSON data without cycles`, { path, cause: err });
  }
}

/**
 * Read a task message of protocol v2 (task name in headers) or v1 (everything in a body object).
 * Throws DecodeError, carrying the message, for anything that is not a valid task message.
 */
export function decodeTaskMessage(message: Message, accept?: readonly string[]): TaskRequest {
  const payload = decodeBody(message, accept);
  const h = message.headers;
  if (typeof h.task === 'string') return fromV2(message, payload);
  if (h.task !== undefined) {
    // e.g. the message a Python worker publishes after winning an election with action=None
    // [cap redis-task-worker-election-winner-none-task.json]
    throw new DecodeError(`task header "task" must be a task name string, got ${JSON.stringify(h.task)}`, message);
  }
  if (payload !== null && typeof payload === 'object' && !Array.isArray(payload) && 'task' in payload) {
    return fromV1(message, payload as Record<string, unknown>);
  }
  throw new DecodeError('not a Celery task message: no "task" header (protocol 2) and no "task" field in the body (protocol 1)', message);
}

function fromV2(message: Message, payload: unknown): TaskRequest {
  const h = message.headers;
  // A 2-element body (no embed) makes a Python worker exit [cap redis-handmade-acceptance.json:
  // no-embed]; we accept it with an empty embed.
  if (!Array.isArray(payload) || payload.length < 2 || payload.length > 3) {
    throw new DecodeError(`task body must be a JSON array [args, kwargs, embed], got ${describe(payload)}`, message);
  }
  const [args, kwargs, embed] = payload as [unknown, unknown, unknown];
  const id = requireString(h.id, 'id', message);
  return {
    protocol: 2,
    id,
    name: h.task as string,
    args: requireArgs(args, message),
    kwargs: requireKwargs(kwargs, message),
    embed: readEmbed(embed),
    eta: readDate(h.eta, 'eta', message),
    expires: readDate(h.expires, 'expires', message),
    retries: typeof h.retries === 'number' ? h.retries : 0,
    timelimit: readTimelimit(h.timelimit),
    rootId: str(h.root_id),
    parentId: str(h.parent_id),
    group: str(h.group),
    groupIndex: typeof h.group_index === 'number' ? h.group_index : null,
    shadow: str(h.shadow),
    origin: str(h.origin),
    ignoreResult: h.ignore_result === true,
    argsrepr: typeof h.argsrepr === 'string' ? h.argsrepr : argsRepr(args as unknown[]),
    kwargsrepr: typeof h.kwargsrepr === 'string' ? h.kwargsrepr : pyRepr(kwargs),
    replyTo: str(message.properties.reply_to),
    correlationId: str(message.properties.correlation_id),
    headers: h,
  };
}

/**
 * Protocol 1 (`as_task_v1`): everything in a body object. Like Celery's `hybrid_to_proto2`, a
 * chain stays what v1 made of it: nested `options.link` callbacks, not `embed.chain`.
 */
function fromV1(message: Message, b: Record<string, unknown>): TaskRequest {
  const id = requireString(b.id, 'id', message);
  const args = requireArgs(b.args ?? [], message);
  const kwargs = requireKwargs(b.kwargs ?? {}, message);
  return {
    protocol: 1,
    id,
    name: requireString(b.task, 'task', message),
    args,
    kwargs,
    embed: readEmbed({ callbacks: b.callbacks, errbacks: b.errbacks, chain: null, chord: b.chord }),
    eta: readDate(b.eta, 'eta', message),
    expires: readDate(b.expires, 'expires', message),
    retries: typeof b.retries === 'number' ? b.retries : 0,
    timelimit: readTimelimit(b.timelimit),
    // v1 has no root: the task is its own root, as a v2 client would have written it
    rootId: str(b.root_id) ?? id,
    parentId: str(b.parent_id),
    group: str(b.taskset) ?? str(b.group),
    groupIndex: typeof b.group_index === 'number' ? b.group_index : null,
    shadow: str(b.shadow),
    origin: str(b.origin),
    ignoreResult: false,
    argsrepr: typeof b.argsrepr === 'string' ? b.argsrepr : argsRepr(args),
    kwargsrepr: typeof b.kwargsrepr === 'string' ? b.kwargsrepr : pyRepr(kwargs),
    replyTo: str(message.properties.reply_to),
    correlationId: str(message.properties.correlation_id),
    headers: message.headers,
  };
}

function readEmbed(e: unknown): Embed {
  const o = e !== null && typeof e === 'object' && !Array.isArray(e) ? (e as Record<string, unknown>) : {};
  const list = (v: unknown) => (Array.isArray(v) && v.length > 0 ? (v as SignatureDict[]) : null);
  return {
    callbacks: list(o.callbacks),
    errbacks: list(o.errbacks),
    chain: list(o.chain),
    chord: o.chord && typeof o.chord === 'object' ? (o.chord as SignatureDict) : null,
  };
}

function readDate(v: unknown, field: string, message: Message): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  if (typeof v === 'string') {
    const d = parsePythonDate(v);
    if (d) return d;
  }
  throw new DecodeError(`task header "${field}" is not an ISO-8601 date: ${describe(v)}`, message);
}

function readTimelimit(v: unknown): [number | null, number | null] {
  if (!Array.isArray(v)) return [null, null];
  const n = (x: unknown) => (typeof x === 'number' ? x : null);
  return [n(v[0]), n(v[1])];
}

function requireString(v: unknown, field: string, message: Message): string {
  if (typeof v === 'string' && v.length > 0) return v;
  throw new DecodeError(`task message has no "${field}" string${v === undefined ? '' : `, got ${describe(v)}`}`, message);
}

function requireArgs(v: unknown, message: Message): unknown[] {
  if (Array.isArray(v)) return v;
  throw new DecodeError(`task args must be a JSON array, got ${describe(v)}`, message);
}

function requireKwargs(v: unknown, message: Message): Record<string, unknown> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  throw new DecodeError(`task kwargs must be a JSON object, got ${describe(v)}`, message);
}

/** A short JSON rendering of a bad value for an error message (never throws). */
function describe(v: unknown): string {
  let s: string;
  try {
    s = dumps(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

