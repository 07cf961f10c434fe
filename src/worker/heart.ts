import os from 'node:os';
import { loadavg } from '../events/event.ts';
import type { EventDispatcher } from '../events/dispatcher.ts';
import { VERSION } from '../version.ts';

/** worker-online / worker-heartbeat / worker-offline (Celery's Heart), every `interval` seconds. */
export class Heart {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly events: EventDispatcher,
    readonly interval: number,
    private readonly counts: () => { active: number; processed: number },
  ) {}

  fields(freq = this.interval): Record<string, unknown> {
    const { active, processed } = this.counts();
    return { freq, sw_ident: 'celeriac', sw_ver: VERSION, sw_sys: os.type(), active, processed, loadavg: loadavg() };
  }

  async start(): Promise<void> {
    await this.events.send('worker-online', this.fields());
    this.timer = setInterval(() => void this.events.send('worker-heartbeat', this.fields()), this.interval * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.events.send('worker-offline', this.fields());
  }
}
