/**
 * Signature options. A signature keeps its calling options as Celery does, under `apply_async`'s
 * snake_case names (`task_id`, `reply_to`, `link`, `link_error`, `group_id`, `chord`, …), because
 * they travel on the wire inside other messages (embed.chain, embed.chord, link). Users may pass
 * them in camelCase (CallOptions style); they are stored snake_case.
 */
import type { CallOptions } from '../protocol/call-options.ts';
import type { PublishOptions } from '../app/publish.ts';
import type { SignatureDict } from '../protocol/task-message.ts';

/** Options as stored in a signature: Celery's snake_case keys. */
export type SigOptions = Record<string, unknown>;

/** A signature or its dict (structurally: anything serialising to Celery's dict form). */
type SigValue = SignatureDict | { toJSON(): SignatureDict };

/** Options accepted from users: CallOptions (camelCase), Celery's snake_case names, or canvas internals. */
export type SignatureOptions = Omit<CallOptions, 'link' | 'linkError'> & {
  link?: SigValue | SigValue[];
  linkError?: SigValue | SigValue[];
  groupId?: string;
  groupIndex?: number;
  rootId?: string;
  parentId?: string;
  replyTo?: string;
  [option: string]: unknown;
};

/** camelCase names whose Celery option is not their plain snake_case form. */
const RENAMED: Record<string, string> = { group: 'group_id' };

const snake = (k: string): string => RENAMED[k] ?? k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());

/** Normalise user options to snake_case; `undefined` and `null` are dropped (Celery dismisses None options). */
export function normalizeOptions(options: Record<string, unknown> | undefined): SigOptions {
  const out: SigOptions = {};
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined && v !== null) out[snake(k)] = v;
  return out;
}

/** A signature object or dict as its plain dict (anything with toJSON). */
export function plainSignature(v: unknown): SignatureDict {
  const j = (v as { toJSON?: () => unknown }).toJSON;
  return (typeof j === 'function' ? j.call(v) : v) as SignatureDict;
}

function sigList(v: unknown): SignatureDict[] | undefined {
  if (v === undefined || v === null) return undefined;
  return (Array.isArray(v) ? v : [v]).map(plainSignature);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const date = (v: unknown): Date | undefined => (v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined);

/** The publish options a signature's (snake_case) options amount to, as Celery's `send_task` reads them. */
export function publishOptions(o: SigOptions): PublishOptions {
  const out: PublishOptions = {
    taskId: str(o.task_id),
    queue: str(o.queue),
    routingKey: str(o.routing_key),
    exchange: str(o.exchange),
    priority: num(o.priority),
    countdown: num(o.countdown),
    eta: date(o.eta),
    expires: num(o.expires) ?? date(o.expires),
    headers: o.headers && typeof o.headers === 'object' ? (o.headers as Record<string, unknown>) : undefined,
    shadow: str(o.shadow),
    timeLimit: num(o.time_limit),
    softTimeLimit: num(o.soft_time_limit),
    ignoreResult: typeof o.ignore_result === 'boolean' ? o.ignore_result : undefined,
    link: sigList(o.link),
    linkError: sigList(o.link_error),
    group: str(o.group_id),
    groupIndex: num(o.group_index),
    chord: o.chord ? plainSignature(o.chord) : undefined,
    chain: sigList(o.chain),
    rootId: str(o.root_id),
    parentId: str(o.parent_id),
    replyTo: str(o.reply_to),
    retries: num(o.retries),
    addToParent: o.add_to_parent === false ? false : undefined,
    // Celery passes unknown options to the producer as message properties.
    properties: typeof o.replaced_task_nesting === 'number' ? { replaced_task_nesting: o.replaced_task_nesting } : undefined,
  };
  for (const k of Object.keys(out) as (keyof PublishOptions)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** Deep copy of options; nested signatures become plain dicts, as Celery's deepcopy of a Signature does. */
export function copyOptions(o: SigOptions): SigOptions {
  return copy(o) as SigOptions;
}

function copy(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copy);
  if (v instanceof Date || v === null || typeof v !== 'object') return v;
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return copy(plainSignature(v));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
}
