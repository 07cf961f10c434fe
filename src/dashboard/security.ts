import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ConfigurationError } from '../errors.ts';

export interface SecurityOptions {
  /** Flower's --basic-auth: `user:pass`, several separated by commas. */
  basicAuth?: string[];
  /** A bearer token (`Authorization: Bearer <token>`). */
  authToken?: string;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * Who may use the dashboard, and which POSTs are genuine. With no credentials configured every
 * request passes (the default bind is loopback). Actions are POSTs; a browser's POST must carry
 * the page's CSRF token and come from the same origin, since a browser sends basic-auth
 * credentials to any site's form. A request with no browser marks (no Origin, no Sec-Fetch-Site:
 * curl, scripts) cannot be forged by another site, and passes with its credentials alone.
 */
export class Security {
  readonly csrfToken = randomBytes(24).toString('hex');
  readonly enabled: boolean;

  constructor(private readonly opts: SecurityOptions) {
    for (const pair of opts.basicAuth ?? []) {
      if (!/^[^:]+:.+$/.test(pair)) throw new ConfigurationError(`--basic-auth expects user:password (several separated by commas), got ${JSON.stringify(pair.replace(/:.*/, ':…'))}`);
    }
    this.enabled = (opts.basicAuth?.length ?? 0) > 0 || !!opts.authToken;
  }

  authenticated(req: IncomingMessage): boolean {
    if (!this.enabled) return true;
    const header = req.headers.authorization ?? '';
    const [scheme, value = ''] = header.split(/\s+/, 2);
    if (/^bearer$/i.test(scheme ?? '') && this.opts.authToken) return same(value, this.opts.authToken);
    if (/^basic$/i.test(scheme ?? '') && this.opts.basicAuth) {
      const given = Buffer.from(value, 'base64').toString('utf8');
      return this.opts.basicAuth.some((pair) => same(given, pair));
    }
    return false;
  }

  /** Why a POST is refused, or null when it may go on. */
  csrfProblem(req: IncomingMessage): string | null {
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    const fromBrowser = origin !== undefined || site !== undefined;
    if (!fromBrowser) return null;
    if (site !== undefined && site !== 'same-origin') return `cross-site request refused (Sec-Fetch-Site: ${site})`;
    if (origin !== undefined && origin !== 'null') {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        return 'bad Origin header';
      }
      if (host !== req.headers.host) return `request from another origin (${origin}) refused`;
    }
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !same(token, this.csrfToken)) return 'missing or wrong X-CSRF-Token header: reload the page';
    return null;
  }
}

/** Loopback addresses, where a dashboard without auth is reachable only from this machine. */
export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}
