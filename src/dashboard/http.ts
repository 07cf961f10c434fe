import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer other than 200: Flower writes the message as the body (text, not JSON). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** The path's captured parts, decoded. */
  params: string[];
  /** A query or form argument (Tornado's get_argument: query string, then a urlencoded body). */
  arg(name: string): string | undefined;
  /** The body as JSON (Flower's task apply), {} when empty. */
  json(): unknown;
}

export type Handler = (ctx: Ctx) => unknown | Promise<unknown>;

export interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  handler: Handler;
}

const MAX_BODY = 1 << 20;

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body over 1 MB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function makeCtx(req: IncomingMessage, res: ServerResponse, url: URL, params: string[]): Promise<Ctx> {
  const body = req.method === 'POST' ? await readBody(req) : '';
  const form = /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '') ? new URLSearchParams(body) : undefined;
  return {
    req, res, url, params,
    arg: (name) => url.searchParams.get(name) ?? form?.get(name) ?? undefined,
    json: () => {
      if (!body.trim()) return {};
      try {
        return JSON.parse(body) as unknown;
      } catch (err) {
        throw new HttpError(400, `the request body is not JSON: ${(err as Error).message}`);
      }
    },
  };
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'cache-control': 'no-store' });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

/** Tornado's bool argument: a missing one is the default; "false"/"0"/"" are false. */
export function boolArg(v: string | undefined, dflt = false): boolean {
  if (v === undefined) return dflt;
  return !['false', '0', '', 'no', 'off'].includes(v.toLowerCase());
}

export function numArg(name: string, v: string | undefined, integer = false): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new HttpError(400, `${name} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
  return n;
}

export function requiredArg(ctx: Ctx, name: string): string {
  const v = ctx.arg(name);
  if (v === undefined) throw new HttpError(400, `Missing argument ${name}`);
  return v;
}
