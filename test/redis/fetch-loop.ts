/**
 * Child process of atomicity.test.ts: fetches from a Redis queue in a loop, never settling, and
 * kills itself with SIGKILL once it holds `killAfter` messages, while its next fetch is in flight.
 * Counting messages rather than waiting a time keeps some in the queue however fast or slow the
 * machine is. Usage: node --import tsx fetch-loop.ts <broker url> <queue> <killAfter>
 */
import { createTransport } from '../../src/transport/registry.ts';

const [url, queue, killAfterArg] = process.argv.slice(2) as [string, string, string];
const killAfter = Number(killAfterArg);
if (!(killAfter >= 1)) throw new Error(`fetch-loop: the third argument must be the number of messages to hold before dying, not ${killAfterArg}`);
const t = createTransport(url);
let held = 0;
for (let i = 0; ; i++) {
  const got = await t.fetch([queue], 1 + (i % 50), 1000);
  held += got.length;
  if (held >= killAfter) setTimeout(() => process.kill(process.pid, 'SIGKILL'), 0);
}
