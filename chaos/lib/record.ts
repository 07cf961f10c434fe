/**
 * The execution record: a list on the shared Redis (the test suite's DB, test/helpers/redis-db.ts)
 * under a key unique to the run, one "<tag> <pid> <payload length>" entry per execution. Deleted
 * after reading.
 */
import { Redis } from 'ioredis';
import { TEST_DB, TEST_KEY_PREFIX } from '../../test/helpers/redis-db.ts';

export const RECORD_DB = TEST_DB;

export interface Execution {
  tag: string;
  pid: number;
}

export class ExecutionRecord {
  private readonly redis = new Redis({ host: '127.0.0.1', port: 6379, db: RECORD_DB, lazyConnect: true, maxRetriesPerRequest: 2 });

  constructor(readonly key: string) {}

  static unique(name: string): ExecutionRecord {
    return new ExecutionRecord(`${TEST_KEY_PREFIX}chaos-${process.pid}-${Date.now().toString(36)}:${name}`);
  }

  async count(): Promise<number> {
    return this.redis.llen(this.key);
  }

  async read(): Promise<Execution[]> {
    const all = await this.redis.lrange(this.key, 0, -1);
    return all.map((line) => {
      const [tag = '', pid = '0'] = line.split(' ');
      return { tag, pid: Number(pid) };
    });
  }

  async destroy(): Promise<void> {
    await this.redis.del(this.key);
    this.redis.disconnect();
  }
}
