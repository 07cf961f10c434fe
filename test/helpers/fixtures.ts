/**
 * Wire fixtures captured from Python Celery 5.2, in test/fixtures/celery-wire/fixtures (how they
 * were captured: README.md there; what they show: REFERENCE.md there, §1 and §4). Set
 * CELERY_WIRE_FIXTURES to use another folder. A missing folder is an error, never a skip: golden
 * tests that silently test nothing are worse than no tests.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message } from '../../src/protocol/message.ts';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const fixturesDir: string = process.env.CELERY_WIRE_FIXTURES
  ? path.resolve(process.env.CELERY_WIRE_FIXTURES)
  : path.join(projectRoot, 'test', 'fixtures', 'celery-wire', 'fixtures');

/** Throws (failing the test file) when the fixture folder is absent or empty. */
export function requireFixturesDir(): string {
  const hint =
    'The golden protocol tests need the Celery 5.2 wire captures (celery-wire/fixtures/*.json). ' +
    'They are part of the repository (test/fixtures/celery-wire/fixtures): restore them from git, or set CELERY_WIRE_FIXTURES to their folder.';
  if (!existsSync(fixturesDir) || !statSync(fixturesDir).isDirectory()) {
    throw new Error(`celery-wire fixtures not found: ${fixturesDir} does not exist. ${hint}`);
  }
  if (!readdirSync(fixturesDir).some((f) => f.endsWith('.json'))) {
    throw new Error(`celery-wire fixtures not found: ${fixturesDir} holds no *.json file. ${hint}`);
  }
  return fixturesDir;
}

/** Names (`redis-task-plain.json`, …) of every fixture, sorted; optionally only those starting with `prefix`. */
export function listFixtures(prefix = ''): string[] {
  return readdirSync(requireFixturesDir())
    .filter((f) => f.endsWith('.json') && f.startsWith(prefix))
    .sort();
}

const cache = new Map<string, unknown>();

/** Parsed content of one fixture (`name` with or without `.json`). */
export function loadFixture<T = any>(name: string): T {
  const file = name.endsWith('.json') ? name : `${name}.json`;
  if (!cache.has(file)) {
    const full = path.join(requireFixturesDir(), file);
    if (!existsSync(full)) throw new Error(`celery-wire fixture ${file} is missing from ${fixturesDir}`);
    cache.set(file, JSON.parse(readFileSync(full, 'utf8')));
  }
  return cache.get(file) as T;
}

// ---------------------------------------------------------------------------------------------
// Finding messages inside fixtures, whatever their shape.

/** A kombu virtual-transport envelope (Redis), as a raw string when the fixture kept one. */
export interface FoundEnvelope {
  kind: 'envelope';
  /** JSON path inside the fixture, for test names and failure messages. */
  where: string;
  /** The byte-exact string as stored/sent, or the envelope re-serialized when only the object was kept. */
  raw: string;
  /** True when `raw` is the captured string itself (byte-exact comparisons make sense). */
  exact: boolean;
  envelope: Record<string, any>;
}

/** An AMQP message: a decoded basic.publish / basic.deliver / basic.get-ok frame, or a hand-built one. */
export interface FoundAmqp {
  kind: 'amqp';
  where: string;
  message: Message;
  frame: Record<string, any>;
}

export type FoundMessage = FoundEnvelope | FoundAmqp;

const isObj = (v: unknown): v is Record<string, any> => v !== null && typeof v === 'object' && !Array.isArray(v);

function looksLikeEnvelope(v: unknown): v is Record<string, any> {
  return isObj(v) && typeof v.body === 'string' && isObj(v.properties) && isObj(v.headers);
}

/**
 * Every message in a fixture: envelope strings (`raw`, `request_raw_published`, monitor LPUSH
 * arguments, `unacked` hash values, …), envelope objects kept without their string
 * (`sent_envelope`), AMQP frames (`properties` + `body_b64`) and hand-built AMQP messages
 * (`headers` + `properties.content_type` + `body` text). An envelope object that is only the
 * parsed copy of a string found elsewhere (`envelope` next to `raw`) is not reported twice.
 */
export function findMessages(fixture: unknown): FoundMessage[] {
  const strings: FoundEnvelope[] = [];
  const objects: FoundEnvelope[] = [];
  const amqp: FoundAmqp[] = [];
  const visit = (v: unknown, where: string): void => {
    if (typeof v === 'string') {
      const t = v.trimStart();
      if (t[0] !== '{' && t[0] !== '[') return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(v);
      } catch {
        return;
      }
      if (looksLikeEnvelope(parsed)) strings.push({ kind: 'envelope', where, raw: v, exact: true, envelope: parsed });
      else visit(parsed, `${where}<json>`);
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, `${where}[${i}]`));
    } else if (looksLikeEnvelope(v)) {
      objects.push({ kind: 'envelope', where, raw: JSON.stringify(v), exact: false, envelope: v });
    } else if (isObj(v) && isObj(v.properties) && typeof v.body_b64 === 'string') {
      amqp.push({ kind: 'amqp', where, frame: v, message: amqpMessage(v.properties, Buffer.from(v.body_b64, 'base64')) });
    } else if (isObj(v) && isObj(v.headers) && isObj(v.properties) && typeof v.properties.content_type === 'string' && typeof v.body === 'string') {
      amqp.push({ kind: 'amqp', where, frame: v, message: amqpMessage({ ...v.properties, headers: v.headers }, Buffer.from(v.body, 'utf8')) });
    } else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) visit(x, where ? `${where}.${k}` : k);
    }
  };
  visit(fixture, '');
  const seen = new Set<string>();
  const unique = (e: FoundEnvelope, key: string) => !seen.has(key) && seen.add(key);
  return [
    ...strings.filter((e) => unique(e, e.raw) && seen.add(JSON.stringify(e.envelope))),
    ...objects.filter((e) => unique(e, e.raw)),
    ...amqp,
  ];
}

/** A Message from AMQP basic properties (py-amqp names) and the raw body bytes. */
export function amqpMessage(props: Record<string, any>, body: Buffer): Message {
  const { content_type, content_encoding, headers, ...properties } = props;
  return {
    headers: isObj(headers) ? headers : {},
    properties,
    contentType: typeof content_type === 'string' ? content_type : 'application/json',
    contentEncoding: typeof content_encoding === 'string' ? content_encoding : 'utf-8',
    body,
  };
}

// ---------------------------------------------------------------------------------------------
// Expectations computed straight from the wire data, without the code under test.

/** `Message` of a found message (an envelope is opened with the same rules kombu uses). */
export function wireMessage(found: FoundMessage): Message {
  if (found.kind === 'amqp') return found.message;
  const e = found.envelope;
  const { delivery_info: _i, body_encoding, delivery_tag: _t, ...properties } = e.properties;
  return {
    headers: e.headers,
    properties,
    contentType: e['content-type'] ?? 'application/json',
    contentEncoding: e['content-encoding'] ?? 'utf-8',
    body: body_encoding === 'base64' ? Buffer.from(e.body, 'base64') : Buffer.from(e.body, 'utf8'),
  };
}

/**
 * The instant a Python ISO string denotes, at JS precision: microseconds cut to milliseconds, a
 * naive time read as UTC (Celery's `enable_utc`).
 */
export function wireDate(s: unknown): Date | null {
  if (s === null || s === undefined) return null;
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:\d\d)?$/.exec(String(s));
  if (!m) throw new Error(`fixture date ${JSON.stringify(s)} is not in a format this helper knows`);
  return new Date(`${m[1]}.${(m[2] ?? '').padEnd(3, '0').slice(0, 3)}${m[3] ?? 'Z'}`);
}

/** Python's `isoformat()` of `s` after cutting it to millisecond precision (what a JS Date can hold). */
export function isoToMillis(s: string): string {
  return s.replace(/\.(\d{3})\d{0,3}(?=Z|[+-]\d\d:\d\d|$)/, (_m, ms: string) => (ms === '000' ? '' : `.${ms}000`));
}

const nonEmpty = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v : null);

/**
 * What decodeTaskMessage must return for a wire task message, read directly off the fixture;
 * `'invalid'` when the message is not a decodable task (body not JSON, `task` header not a string).
 * Empty callback lists are expected as null (celeriac normalizes `[]` to "none").
 */
export function expectedTaskRequest(m: Message): Record<string, unknown> | 'invalid' | 'not-a-task' {
  let body: any;
  try {
    body = JSON.parse(m.body.toString('utf8'));
  } catch {
    return 'invalid';
  }
  const h = m.headers as Record<string, any>;
  const p = m.properties as Record<string, any>;
  const common = { replyTo: p.reply_to ?? null, correlationId: p.correlation_id ?? null, headers: h };
  if ('task' in h) {
    if (typeof h.task !== 'string') return 'invalid';
    const [args, kwargs, embed = {}] = body;
    return {
      protocol: 2,
      id: h.id,
      name: h.task,
      args,
      kwargs,
      embed: { callbacks: nonEmpty(embed.callbacks), errbacks: nonEmpty(embed.errbacks), chain: nonEmpty(embed.chain), chord: embed.chord ?? null },
      eta: wireDate(h.eta),
      expires: wireDate(h.expires),
      retries: h.retries ?? 0,
      timelimit: h.timelimit ?? [null, null],
      rootId: h.root_id ?? null,
      parentId: h.parent_id ?? null,
      group: h.group ?? null,
      groupIndex: h.group_index ?? null,
      shadow: h.shadow ?? null,
      origin: h.origin ?? null,
      ignoreResult: h.ignore_result ?? false,
      ...(typeof h.argsrepr === 'string' ? { argsrepr: h.argsrepr } : {}),
      ...(typeof h.kwargsrepr === 'string' ? { kwargsrepr: h.kwargsrepr } : {}),
      ...common,
    };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !('task' in body)) return 'not-a-task';
  return {
    protocol: 1,
    id: body.id,
    name: body.task,
    args: body.args ?? [],
    kwargs: body.kwargs ?? {},
    embed: { callbacks: nonEmpty(body.callbacks), errbacks: nonEmpty(body.errbacks), chain: null, chord: body.chord ?? null },
    eta: wireDate(body.eta),
    expires: wireDate(body.expires),
    retries: body.retries ?? 0,
    timelimit: body.timelimit ?? [null, null],
    rootId: body.id,
    parentId: null,
    group: body.taskset ?? body.group ?? null,
    groupIndex: body.group_index ?? null,
    ...common,
  };
}

/**
 * Python writes a float with an integral value as `2.0`; a JS number cannot remember that, so
 * `dumps` writes `2`. Rewrite such number tokens (outside strings) the JS way before comparing.
 */
export function integralFloatsAsInts(json: string): string {
  let out = '';
  for (let i = 0; i < json.length; ) {
    if (json[i] === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      out += json.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(json.slice(i, i + 40))?.[0];
    if (num && !/[\w.]/.test(json[i - 1] ?? '')) {
      out += /^-?\d+\.0+$/.test(num) ? num.replace(/\.0+$/, '') : num;
      i += num.length;
      continue;
    }
    out += json[i];
    i++;
  }
  return out;
}
