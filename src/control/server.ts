import { pyRepr } from '../protocol/repr.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import { NO_REPLY, PANEL } from './panel.ts';
import { addressedTo, type ControlRequest, jsonMessage, nodeQueue, PIDBOX_EXCHANGE, readJson, REPLY_EXCHANGE } from './pidbox.ts';
import type { ControlTarget } from './target.ts';

/** The worker side of remote control: consume `celery.pidbox`, run the command, reply to the caller. */
export async function serveControl(
  broadcast: Broadcasting,
  target: ControlTarget,
  log: { warning(msg: string): void; debug(msg: string): void },
): Promise<Subscription> {
  return broadcast.subscribe(
    { exchange: PIDBOX_EXCHANGE, bindingKey: '', queue: nodeQueue(target.hostname), messageTtlMs: 300_000, expiresMs: 10_000 },
    (message) => {
      let req: ControlRequest;
      try {
        req = readJson(message) as ControlRequest;
        if (!req || typeof req.method !== 'string') throw new Error('no "method"');
      } catch (err) {
        log.warning(`pidbox: ignoring a control message that is not a command: ${(err as Error).message}`);
        return;
      }
      if (!addressedTo(req, target.hostname)) return;
      const expires = Number(message.headers.expires);
      if (expires > 0 && expires < Date.now() / 1000) return;
      target.clock.adjust(message.headers.clock);
      void handle(broadcast, target, req, log);
    },
  );
}

async function handle(broadcast: Broadcasting, target: ControlTarget, req: ControlRequest, log: { warning(msg: string): void; debug(msg: string): void }): Promise<void> {
  log.debug(`pidbox received method ${req.method}(${pyRepr(req.arguments ?? {})}) [reply_to:${JSON.stringify(req.reply_to ?? null)} ticket:${req.ticket ?? null}]`);
  const handler = Object.hasOwn(PANEL, req.method) ? PANEL[req.method] : undefined;
  let reply: unknown;
  if (!handler) reply = { error: `KeyError('${req.method}')` };
  else {
    try {
      reply = await handler(target, req.arguments ?? {});
    } catch (err) {
      reply = { error: `${(err as Error).name}(${pyRepr((err as Error).message)})` };
    }
  }
  if (reply === NO_REPLY || !req.ticket || !req.reply_to) return;
  const headers = { ticket: req.ticket, clock: target.clock.forward() };
  await broadcast
    .publishExchange({ ...REPLY_EXCHANGE, name: req.reply_to.exchange || REPLY_EXCHANGE.name }, req.reply_to.routing_key, jsonMessage({ [target.hostname]: reply }, headers, 1))
    .catch((err: unknown) => log.warning(`pidbox: could not reply to ${req.method}: ${(err as Error).message}`));
}
