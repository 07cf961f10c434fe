import os from 'node:os';

/** Expand Celery's node-name variables: %h (host name), %n (its first label), %d (its domain), %i/%I (pid). */
export function expandHostname(template: string, host = os.hostname()): string {
  const [name, ...domain] = host.split('.');
  const expanded = template.replace(/%([hndiI%])/g, (_, c: string) =>
    ({ h: host, n: name ?? host, d: domain.join('.'), i: String(process.pid), I: String(process.pid), '%': '%' })[c] ?? '',
  );
  return expanded.includes('@') ? expanded : `celery@${expanded}`;
}
