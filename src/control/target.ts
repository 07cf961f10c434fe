import type { Celery } from '../app/celery.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import type { LamportClock } from '../events/clock.ts';
import type { DeliveryInfo } from '../protocol/message.ts';
import type { TaskRequest } from '../protocol/task-message.ts';

/** A request the worker holds, as remote control reports it. */
export interface HeldRequest {
  request: TaskRequest;
  info: DeliveryInfo;
  state: 'scheduled' | 'reserved' | 'active';
  acked: boolean;
  timeStart: number | null;
  /** The process running it (a pool child's). */
  workerPid?: number;
}

/** The worker's set of revoked ids, as the panel and mingle use it. */
export interface RevokedIds {
  add(id: string): void;
  ids(): string[];
  toMingle(): Record<string, [number, string]>;
  update(other: unknown): void;
}

/** What the remote-control panel may see and do in a worker. */
export interface ControlTarget {
  readonly hostname: string;
  readonly app: Celery;
  readonly clock: LamportClock;
  readonly revoked: RevokedIds;
  readonly startedAt: number;
  readonly queues: readonly string[];
  readonly concurrency: number;
  readonly prefetchLimit: number;
  readonly events: EventDispatcher | undefined;
  readonly rateLimits: { set(taskName: string, rate: string | number | null | undefined): void };
  heldRequests(): HeldRequest[];
  processedTotals(): Record<string, number>;
  /** Abort running tasks with these ids (revoke --terminate); returns the ids that were running. */
  terminate(ids: readonly string[]): string[];
  addQueue(queue: string): Promise<void>;
  cancelQueue(queue: string): boolean;
  resizePool(delta: number): number;
  readonly poolName: string;
  readonly autoscaler: { update(max: number | undefined, min: number | undefined): [number, number]; info(): Record<string, number> } | undefined;
  /** The `pool` section of stats. */
  poolInfo(): Record<string, unknown>;
  /** Replace the pool's children (pool_restart); throws where the pool cannot. */
  restartPool(): Promise<void>;
  sendHeartbeat(freq?: number): Promise<void>;
  requestShutdown(): void;
  /** Start a gossip election (no-op without gossip). */
  election(id: string, topic: string, action: unknown): Promise<void>;
}
