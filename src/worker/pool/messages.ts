/** What the parent and its children (processes or threads) say to each other. */
import type { TraceOutcome } from '../../app/trace.ts';
import type { DeliveryInfo } from '../../protocol/message.ts';
import type { TaskRequest } from '../../protocol/task-message.ts';
import { pyRepr } from '../../protocol/repr.ts';
import type { LogFormat, LogLevel } from '../../common/log.ts';

/** Given to a child when it starts: how to load the same app as the parent, and who it is. */
export interface ChildInit {
  kind: 'processes' | 'threads';
  /** The -A value, resolved from the parent's working directory. */
  app: string;
  /** The parent's broker and backend URLs (after -b/--result-backend). */
  broker: string;
  backend: string | null | undefined;
  hostname: string;
  index: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** KiB (--max-memory-per-child): past it after a task, the child gives back what it holds and runs nothing more. */
  maxMemory?: number | null;
}

export type ToChild =
  | {
    t: 'run';
    job: number;
    req: TaskRequest;
    deliveryInfo: DeliveryInfo | null;
    properties: Record<string, unknown> | undefined;
    queue: string | null;
    /** The parent enforces the hard limit; the soft one fires in the child. */
    soft: number | null;
  }
  /** Skip this job if it has not started (answered by `cancelled`; a started one runs on). */
  | { t: 'cancel'; job: number }
  | { t: 'exit' };

/** An error as far as the parent needs it: its log line and events. */
export interface WireError {
  name: string;
  message: string;
}

export type WireOutcome =
  | { state: 'SUCCESS'; result: unknown; runtime: number }
  | { state: 'FAILURE'; error: WireError; traceback: string; runtime: number }
  | { state: 'RETRY'; error: WireError }
  | Extract<TraceOutcome, { state: 'IGNORED' | 'REVOKED' | 'REJECTED' }>;

export type FromChild =
  | { t: 'ready'; mem: number }
  | { t: 'failed'; message: string }
  /** The child begins the job (the parent acks it and starts its hard limit now). */
  | { t: 'started'; job: number }
  /** The job was still in the child's queue and will not run. */
  | { t: 'cancelled'; job: number }
  | { t: 'done'; job: number; outcome: WireOutcome; mem: number };

function toWire(err: unknown): WireError {
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: pyRepr(err) };
}

export function outcomeToWire(o: TraceOutcome): WireOutcome {
  if (o.state === 'FAILURE') return { ...o, error: toWire(o.error) };
  if (o.state === 'RETRY') return { ...o, error: toWire(o.error) };
  return o;
}

export function outcomeFromWire(o: WireOutcome): TraceOutcome {
  if (o.state === 'FAILURE' || o.state === 'RETRY') return { ...o, error: Object.assign(new Error(o.error.message), { name: o.error.name }) };
  return o;
}
