import { Mailbox } from '../control/mailbox.ts';
import type { LamportClock } from '../events/clock.ts';
import type { Broadcasting } from '../transport/types.ts';
import type { RevokedSet } from './revoked-set.ts';

/**
 * Mingle: at start-up ask every worker `hello`, merge their revoked ids and clocks. Runs before
 * this worker's own control queue exists, as Celery's does, so it never answers itself.
 */
export async function mingle(
  broadcast: Broadcasting,
  opts: { hostname: string; oid: string; clock: LamportClock; revoked: RevokedSet; timeout?: number },
): Promise<string[]> {
  const mailbox = new Mailbox(broadcast, opts.oid, opts.clock);
  const replies = await mailbox.call('hello', { from_node: opts.hostname, revoked: opts.revoked.toMingle() }, { timeout: opts.timeout ?? 1 });
  const synced: string[] = [];
  for (const reply of replies) {
    for (const [node, value] of Object.entries(reply)) {
      if (node === opts.hostname || !value || typeof value !== 'object') continue;
      const v = value as { revoked?: unknown; clock?: unknown };
      opts.clock.adjust(v.clock);
      opts.revoked.update(v.revoked);
      synced.push(node);
    }
  }
  return synced;
}
