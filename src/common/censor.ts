/**
 * Secrets out of everything a worker prints or sends (banner, logs, errors, `inspect conf`,
 * `dump_conf`, `report`), as Celery censors them: `filter_hidden_settings` in
 * celery/app/utils.py and kombu's `maybe_sanitize_url`. One place, so no path forgets one.
 */

/** Celery's HIDDEN_SETTINGS: a setting (or query parameter) whose name matches is replaced whole. */
export const HIDDEN_SETTINGS = /API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE/i;

/** The mask `filter_hidden_settings` uses. */
export const SETTINGS_MASK = '********';
/** kombu's default mask (`sanitize_url`), which the banner and logs show. */
export const URL_MASK = '**';

interface UrlParts {
  scheme: string;
  user: string;
  hasPassword: boolean;
  hostPort: string;
  path: string;
  query: string;
}

/** Split one `scheme://user:pass@host:port/path?query#frag` without a regex that can backtrack. */
function splitUrl(url: string): UrlParts | null {
  const sep = url.indexOf('://');
  if (sep <= 0) return null;
  const scheme = url.slice(0, sep);
  const rest = url.slice(sep + 3);
  let end = rest.length;
  for (const c of ['/', '?', '#']) {
    const i = rest.indexOf(c);
    if (i >= 0 && i < end) end = i;
  }
  const authority = rest.slice(0, end);
  let tail = rest.slice(end);
  const hash = tail.indexOf('#');
  if (hash >= 0) tail = tail.slice(0, hash);
  const q = tail.indexOf('?');
  const path = q >= 0 ? tail.slice(0, q) : tail;
  const query = q >= 0 ? tail.slice(q + 1) : '';
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const colon = userinfo.indexOf(':');
  return {
    scheme,
    user: colon >= 0 ? userinfo.slice(0, colon) : userinfo,
    hasPassword: colon >= 0 && colon < userinfo.length - 1,
    hostPort: authority.slice(at + 1),
    path,
    query,
  };
}

function userPart(p: UrlParts, mask: string): string {
  if (!p.user && !p.hasPassword) return '';
  return `${p.user}${p.hasPassword ? `:${mask}` : ''}@`;
}

/**
 * kombu's `maybe_sanitize_url`: a URL (anything with `://`) rebuilt as `scheme://user:MASK@host:port/path`,
 * without its query (as kombu's `as_url`); anything else unchanged. Several URLs joined by `;`
 * (failover, sentinel) are each sanitised.
 */
export function maybeSanitizeUrl<T>(value: T, mask = URL_MASK): T | string {
  if (typeof value !== 'string' || !value.includes('://')) return value;
  return value
    .split(';')
    .map((one) => {
      const p = splitUrl(one);
      if (!p) return one;
      return `${p.scheme}://${userPart(p, mask)}${p.hostPort}/${p.path.replace(/^\//, '')}`;
    })
    .join(';');
}

/**
 * A URL for logs, banners and errors: the password masked and query parameters whose names look
 * secret (`?password=…`, `?sentinel_password=…`) masked, the rest kept so the URL still says
 * where it points.
 */
export function maskUrl(url: string | URL, mask = URL_MASK): string {
  const text = typeof url === 'string' ? url : url.href;
  return text
    .split(';')
    .map((one) => {
      const p = splitUrl(one);
      if (!p) return one;
      const query = p.query
        ? '?' + p.query.split('&').map((kv) => {
            const eq = kv.indexOf('=');
            return eq > 0 && HIDDEN_SETTINGS.test(kv.slice(0, eq)) ? `${kv.slice(0, eq)}=${mask}` : kv;
          }).join('&')
        : '';
      return `${p.scheme}://${userPart(p, mask)}${p.hostPort}${p.path}${query}`;
    })
    .join(';');
}

/**
 * Celery's `filter_hidden_settings`: keys that look secret become `********`, `broker_url` and
 * any key with `backend` in its name have their URL's password masked; nested objects likewise.
 */
export function filterHiddenSettings(conf: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(conf)) out[key] = censorSetting(key, value);
  return out;
}

function censorSetting(key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
    return filterHiddenSettings(value as Record<string, unknown>);
  }
  if (HIDDEN_SETTINGS.test(key)) return SETTINGS_MASK;
  const lower = key.toLowerCase();
  if (lower.includes('broker_url') || lower.includes('backend')) return maybeSanitizeUrl(value, SETTINGS_MASK);
  return value;
}

/** Any text (an error message, a log line) with the passwords of the URLs in it masked. */
export function censorText(text: string, mask = URL_MASK): string {
  // Linear: each `://` is looked at once, and the user info ends at the first `@` before a `/`.
  let out = '';
  let from = 0;
  for (let i = text.indexOf('://'); i >= 0; i = text.indexOf('://', i + 3)) {
    const start = i + 3;
    let j = start;
    while (j < text.length && !'/?#@ \t\n"\''.includes(text[j]!)) j++;
    if (text[j] !== '@') continue;
    const colon = text.indexOf(':', start);
    if (colon < 0 || colon >= j - 1) continue;
    out += text.slice(from, colon + 1) + mask;
    from = j;
    i = j;
  }
  return out + text.slice(from);
}
