import { CeleriacError } from '../errors.ts';
import { pyRepr } from '../protocol/repr.ts';

/** A chord could not run its body: a header task failed, or the body could not be sent. */
export class ChordError extends CeleriacError {
  override readonly code = 'ECHORD';
  /** Stored as Celery's own class, so a Python client raises `celery.exceptions.ChordError`. */
  readonly module = 'celery.exceptions';
}

/** Python's repr of a stored exception (`ValueError('boom')`), as Celery's ChordError messages show it. */
export function excRepr(exc: unknown): string {
  const e = exc as { exc_type?: unknown; exc_message?: unknown } | null;
  if (e && typeof e === 'object' && typeof e.exc_type === 'string') {
    const args = Array.isArray(e.exc_message) ? e.exc_message : e.exc_message === undefined ? [] : [e.exc_message];
    return `${e.exc_type}(${args.map((a) => pyRepr(a)).join(', ')})`;
  }
  if (exc instanceof Error) return `${exc.name}(${pyRepr(exc.message)})`;
  return pyRepr(exc);
}
