/**
 * Child process of atomicity.test.ts: fetches from a Redis queue in a loop, never settling,
 * until it is killed. Usage: node --import tsx fetch-loop.ts <broker url> <queue>
 */
import { createTransport } from '../../src/transport/registry.ts';

const [url, queue] = process.argv.slice(2) as [string, string];
const t = createTransport(url);
let announced = false;
for (let i = 0; ; i++) {
  const got = await t.fetch([queue], 1 + (i % 50), 1000);
  if (!announced && got.length > 0) {
    announced = true;
    process.stdout.write('fetching\n');
  }
}
