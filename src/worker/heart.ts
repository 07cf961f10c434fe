import os from 'node:os';
import { loadavg } from '../events/event.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import { signals, type WorkerSender } from '../app/signals.ts';
import { VERSION } from '../version.ts';

/** worker-online / worker-heartbeat / worker-offline (Celery's Heart), every `interval` seconds. */
export class Heart {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly events: EventDispatcher,
    readonly interval: number,
    private readonly counts: () => { active: number; processed: number },
    /** The sender of heartbeatSent. */
    private readonly worker: WorkerSender,
  ) {}

  /** Celery's Heart._send: heartbeatSent, then the event. */
  private send(type: string): Promise<void> {
    if (signals.heartbeatSent.connected) void signals.heartbeatSent.send({ sender: this.worker });
    return this.events.send(type, this.fields());
  }

  fields(freq = this.interval): Record<string, unknown> {
    const { active, processed } = this.counts();
    return { freq, sw_ident: 'celeriac', sw_ver: VERSION, sw_sys: os.type(), active, processed, loadavg: loadavg() };
  }

  async start(): Promise<void> {
    await this.send('worker-online');
    this.timer = setInterval(() => void this.send('worker-heartbeat'), this.interval * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.send('worker-offline');
  }
}
