import fs from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DashboardContext } from './context.ts';
import { HttpError, makeCtx, type Route, sendJson, sendText } from './http.ts';
import { LiveChannel } from './live.ts';
import type { Security } from './security.ts';

/** The built page: next to this module in src/ and in dist/ (scripts/build.mjs copies it). */
const PAGE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'page');
const STATIC: Record<string, string> = { 'app.js': 'text/javascript; charset=UTF-8', 'style.css': 'text/css; charset=UTF-8' };
const HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

/**
 * Node's own http server: the dashboard's routes are a dozen regular expressions, and the live
 * channel is Server-Sent Events (one-way, reconnecting on its own in the browser), so no framework.
 */
export function startServer(d: DashboardContext, security: Security, routes: Route[], renderMetrics: () => Promise<string>): { server: Server; live: LiveChannel } {
  const live = new LiveChannel(d.ingest);
  const page = fs.readFileSync(path.join(PAGE_DIR, 'index.html'), 'utf8').replace('__CSRF_TOKEN__', security.csrfToken);
  const server = createServer((req, res) => {
    for (const [k, v] of Object.entries(HEADERS)) res.setHeader(k, v);
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) sendText(res, err.status, err.message);
      else sendText(res, 500, `Internal error: ${(err as Error)?.message ?? String(err)}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname === '/healthcheck') return sendText(res, 200, 'OK');
    if (!security.authenticated(req)) {
      res.setHeader('www-authenticate', 'Basic realm="celeriac dashboard"');
      return sendText(res, 401, 'Unauthorized: give the --basic-auth user and password, or the bearer token');
    }
    if (req.method === 'GET' && (url.pathname === '/' || /^\/(workers|tasks|queues|worker|task)(\/|$)/.test(url.pathname))) return sendText(res, 200, page, 'text/html; charset=UTF-8');
    const file = /^\/static\/([a-z.]+)$/.exec(url.pathname)?.[1];
    if (req.method === 'GET' && file && STATIC[file]) return sendText(res, 200, fs.readFileSync(path.join(PAGE_DIR, file), 'utf8'), STATIC[file]);
    if (req.method === 'GET' && url.pathname === '/metrics') return sendText(res, 200, await renderMetrics(), 'text/plain; version=0.0.4; charset=utf-8');
    if (req.method === 'GET' && url.pathname === '/api/events') return live.attach(req, res);
    for (const route of routes) {
      const m = route.pattern.exec(url.pathname);
      if (!m) continue;
      if (req.method !== route.method) throw new HttpError(405, `${url.pathname} takes ${route.method}`);
      if (req.method === 'POST') {
        const problem = security.csrfProblem(req);
        if (problem) throw new HttpError(403, problem);
      }
      const ctx = await makeCtx(req, res, url, m.slice(1).map((p) => decodeURIComponent(p)));
      return sendJson(res, 200, await route.handler(ctx));
    }
    throw new HttpError(404, `Not found: ${url.pathname}`);
  }

  return { server, live };
}
