import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventIngest } from './ingest.ts';

const TICK_MS = 250;
const KEEPALIVE_MS = 15_000;

/**
 * Server-Sent Events to the open pages: at most one `change` message per tick, naming how many
 * tasks changed and which workers; the page then reloads what it shows.
 */
export class LiveChannel {
  private readonly clients = new Set<ServerResponse>();
  private tasks = 0;
  private workers = new Set<string>();
  private readonly tick: NodeJS.Timeout;
  private readonly keepalive: NodeJS.Timeout;

  constructor(ingest: EventIngest) {
    ingest.on('change', (c: { tasks: string[]; workers: string[] }) => {
      this.tasks += c.tasks.length;
      for (const w of c.workers) this.workers.add(w);
    });
    this.tick = setInterval(() => this.send(), TICK_MS);
    this.keepalive = setInterval(() => this.write(': keepalive\n\n'), KEEPALIVE_MS);
  }

  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 1000\n\n');
    this.clients.add(res);
    req.on('close', () => this.clients.delete(res));
  }

  private send(): void {
    if (this.tasks === 0 && this.workers.size === 0) return;
    const data = JSON.stringify({ tasks: this.tasks, workers: [...this.workers] });
    this.tasks = 0;
    this.workers = new Set();
    this.write(`event: change\ndata: ${data}\n\n`);
  }

  private write(text: string): void {
    for (const c of this.clients) c.write(text);
  }

  close(): void {
    clearInterval(this.tick);
    clearInterval(this.keepalive);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
