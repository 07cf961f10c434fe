/**
 * The last word on a delivery whose handling threw: every message ends in exactly one ack or
 * reject, whatever failed on the way. A task whose outcome could not be recorded is stored as
 * FAILURE and dead-lettered (Python Celery stores FAILURE and acknowledges); when the result
 * backend says it is unreachable, an acksLate message goes back to its queue for a later try instead.
 */
import { formatTraceback, serializeException } from '../protocol/exceptions.ts';
import type { Held, StrategyEnv } from './strategy.ts';

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export async function settleAfterError(env: StrategyEnv, held: Held, err: unknown, acksLate: boolean): Promise<void> {
  const { request, delivery } = held;
  const tag = `${request.name}[${request.id}]`;
  const fields = { taskId: request.id, task: request.name };
  if (!held.acked && acksLate && env.backend?.isUnavailable?.(err)) {
    held.acked = true;
    env.log.warning(`Task ${tag}: could not record its outcome (${describe(err)}); the message was given back to ${delivery.queue} for a later try`, fields);
    await settleQuietly(env, () => delivery.reject(true, describe(err)));
    return;
  }
  env.log.error(`Task ${tag} failed while its outcome was handled: ${describe(err)}; stored as FAILURE${held.acked ? '' : ' and kept as a dead letter'}`, fields);
  try {
    await env.backend?.storeResult(request.id, serializeException(err), 'FAILURE', { traceback: formatTraceback(err), replyTo: request.replyTo, correlationId: request.correlationId });
  } catch (storeErr) {
    env.log.error(`Task ${tag}: the FAILURE could not be stored either: ${describe(storeErr)}`, fields);
  }
  if (held.acked) return;
  held.acked = true;
  await settleQuietly(env, () => delivery.reject(false, `outcome could not be handled: ${describe(err)}`));
}

async function settleQuietly(env: StrategyEnv, op: () => Promise<void>): Promise<void> {
  try {
    await op();
  } catch (err) {
    env.log.error(`Could not settle a message with the broker: ${describe(err)}; it will be redelivered`);
  } finally {
    env.onRelease();
  }
}
