/**
 * `npm run chaos [-- --quick] [--only <scenario>[,…]] [--broker sqlite|redis|amqp]`: real workers
 * and private brokers through the faults of chaos/scenarios; prints one table, writes
 * chaos/results/<date>.json, exits 1 when a figure to hold is broken.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BROKERS, type BrokerName } from './lib/brokers.ts';
import { runChaos } from './lib/runner.ts';
import { formatTable, violations } from './lib/table.ts';
import { SCENARIOS } from './scenarios/index.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    broker: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(`npm run chaos -- [--quick] [--only <scenario>[,…]] [--broker sqlite|redis|amqp]\n\n${SCENARIOS.map((s) => `  ${s.name.padEnd(18)} ${s.description}`).join('\n')}`);
  process.exit(0);
}
const brokers = values.broker?.split(',').filter(Boolean) as BrokerName[] | undefined;
const bad = brokers?.filter((b) => !BROKERS.includes(b));
if (bad?.length) {
  console.error(`unknown broker ${bad.join(', ')}: choose among sqlite, redis, amqp`);
  process.exit(2);
}

const started = new Date();
const rows = await runChaos({
  quick: values.quick,
  only: values.only?.split(',').filter(Boolean),
  brokers,
  log: (line) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
});
const table = formatTable(rows);
const broken = violations(rows);
console.log(`\nchaos ${values.quick ? '(quick) ' : ''}${started.toISOString().slice(0, 10)}\n\n${table}\n`);
console.log(broken.length === 0 ? 'every figure to hold holds' : `BROKEN:\n${broken.join('\n')}`);
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `${started.toISOString().slice(0, 19).replace(/:/g, '-')}${values.quick ? '-quick' : ''}.json`);
fs.writeFileSync(file, JSON.stringify({ date: started.toISOString(), quick: values.quick, rows, violations: broken }, null, 2) + '\n');
console.log(`results: ${path.relative(process.cwd(), file)}`);
process.exit(broken.length === 0 ? 0 : 1);
