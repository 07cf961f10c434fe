/**
 * The short version of `npm run chaos` (chaos/): the same scenarios with small counts, on private
 * brokers, asserting the figures to hold — nothing lost or stuck under acksLate, nothing run twice
 * outside the at-least-once window, the worker never crashes. To stay within a few minutes on a
 * small machine it runs a subset: worker kill -9 (acksLate) on every broker, broker kill -9 on Redis
 * with AOF and RabbitMQ, connection kills on Redis and RabbitMQ, the malformed mix and a 5 MB burst
 * on SQLite. `npm run chaos -- --quick` runs every scenario on every broker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Broker, startBroker } from '../chaos/lib/brokers.ts';
import type { Row } from '../chaos/lib/harness.ts';
import { formatTable, violations } from '../chaos/lib/table.ts';
import { faultRun } from '../chaos/scenarios/broker-fault.ts';
import { burst } from '../chaos/scenarios/burst.ts';
import { connectionKills } from '../chaos/scenarios/connection-kills.ts';
import { malformed } from '../chaos/scenarios/malformed.ts';
import { killRun } from '../chaos/scenarios/worker-kill.ts';

const settings = { quick: true, log: () => undefined };

/** Every figure holds, and every sent task ran (at least once). */
function expectHolds(rows: Row[]): void {
  const table = formatTable(rows);
  expect(violations(rows), table).toEqual([]);
  for (const r of rows) {
    expect(r.lost, table).toBe(0);
    expect(r.stuck, table).toBe(0);
    expect(r.workerCrashed, table).toBe(0);
    expect(r.ranOnce + r.ranTwice, table).toBeGreaterThan(0);
  }
}

describe.sequential('SQLite', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startBroker('sqlite');
  });
  afterAll(() => broker?.destroy());

  it('kill -9 of a busy acksLate worker: nothing lost, nothing stuck', async () => {
    const row = await killRun(broker, settings, true);
    expectHolds([row]);
    expect(row.ranOnce + row.ranTwice).toBe(row.sent);
  }, 90_000);

  it('the malformed mix: every good task runs once, every bad message is dead-lettered or run', async () => {
    const rows = await malformed.run(broker, settings);
    expectHolds(rows);
    expect(rows[0]!.notes).toMatch(/ 0 ran that must not, 0 neither ran nor dead-lettered/);
  }, 90_000);

  it('a burst of 5 MB messages: each runs once', async () => {
    const rows = await burst.run(broker, settings);
    expectHolds(rows);
    expect(rows[0]!.ranOnce).toBe(rows[0]!.sent);
  }, 90_000);
});

describe.sequential('Redis', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startBroker('redis-aof');
  });
  afterAll(() => broker?.destroy());

  it('kill -9 of a busy acksLate worker: nothing lost, nothing stuck', async () => {
    expectHolds([await killRun(broker, settings, true)]);
  }, 90_000);

  it('kill -9 of the broker (AOF) under load: nothing lost', async () => {
    expectHolds([await faultRun(broker, settings, 'kill9')]);
  }, 90_000);

  it('connections reset every 500 ms: nothing lost', async () => {
    expectHolds(await connectionKills.run(broker, settings));
  }, 90_000);
});

describe.sequential('RabbitMQ', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startBroker('amqp');
  }, 60_000);
  afterAll(() => broker?.destroy(), 60_000);

  it('kill -9 of a busy acksLate worker: nothing lost, nothing stuck', async () => {
    expectHolds([await killRun(broker, settings, true)]);
  }, 90_000);

  it('kill -9 of the broker under load: nothing lost', async () => {
    expectHolds([await faultRun(broker, settings, 'kill9')]);
  }, 120_000);

  it('connections closed every 500 ms: nothing lost', async () => {
    expectHolds(await connectionKills.run(broker, settings));
  }, 90_000);
});
