import { pyRepr } from '../protocol/repr.ts';
import type { Broadcasting, Subscription } from '../transport/types.ts';
import { NO_REPLY, PANEL } from './panel.ts';
import { addressedTo, type ControlRequest, jsonMessage, nodeQueue, PIDBOX_EXCHANGE, readJson, REPLY_EXCHANGE } from './pidbox.ts';
import type { ControlTarget } from './target.ts';

/** A command body over this is answered with an error; over MAX_READ it is not even read. */
export const MAX_CONTROL_BODY = 1 << 20;
const MAX_READ = 16 << 20;
/** Longest string a command argument (or an item of a list argument) may be: names, ids, rates. */
export const MAX_ARGUMENT_LENGTH = 1024;

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
      const size = message.body.length;
      if (size > MAX_READ) {
        log.warning(`pidbox: ignoring a control message of ${size} bytes (at most ${MAX_CONTROL_BODY} are accepted)`);
        return;
      }
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
      void handle(broadcast, target, req, log, tooLarge(size) ?? badArguments(req.arguments));
    },
  );
}

function tooLarge(size: number): string | undefined {
  if (size > MAX_CONTROL_BODY) return `control command of ${size} bytes refused: at most ${MAX_CONTROL_BODY} bytes`;
  return undefined;
}

/** Arguments are bounded before any handler parses them: no handler ever sees an oversized string. */
function badArguments(args: unknown): string | undefined {
  if (args === undefined || args === null) return undefined;
  if (typeof args !== 'object' || Array.isArray(args)) return 'control command refused: "arguments" must be an object';
  for (const [name, value] of Object.entries(args)) {
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) {
      if (typeof item === 'string' && item.length > MAX_ARGUMENT_LENGTH) {
        return `control command refused: argument ${name} has a string of ${item.length} characters (at most ${MAX_ARGUMENT_LENGTH})`;
      }
    }
  }
  return undefined;
}

async function handle(broadcast: Broadcasting, target: ControlTarget, req: ControlRequest, log: { warning(msg: string): void; debug(msg: string): void }, refusal: string | undefined): Promise<void> {
  const handler = Object.hasOwn(PANEL, req.method) ? PANEL[req.method] : undefined;
  let reply: unknown;
  if (refusal) {
    log.warning(`pidbox: ${req.method}: ${refusal}`);
    reply = { error: refusal };
  } else if (!handler) reply = { error: `KeyError('${req.method}')` };
  else {
    log.debug(`pidbox received method ${req.method}(${pyRepr(req.arguments ?? {})}) [reply_to:${JSON.stringify(req.reply_to ?? null)} ticket:${req.ticket ?? null}]`);
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
