/**
 * Secrets are censored as Celery censors them (celery/app/utils.py `filter_hidden_settings`,
 * kombu's `maybe_sanitize_url`): in the banner, the logs, `inspect conf`/`dump_conf`/`report`
 * replies and errors. The broker is a private Redis whose URL carries a password.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterHiddenSettings, maybeSanitizeUrl } from '../../src/common/censor.ts';
import { createLogger } from '../../src/common/log.ts';
import { PYTHON } from '../helpers/python-worker.ts';
import { celeriacCli, PASSWORD, type Parity, pyInspect, startBroker, startCeleriac, startPython, type Worker } from './helpers.ts';

const URLS = [
  'redis://:pw@127.0.0.1:6390/0', 'redis://user:pw@localhost/1?foo=bar', 'amqp://guest:guest@localhost:5672//',
  'amqp://guest:guest@localhost//vh', 'redis://127.0.0.1:6379/0', 'rediss://:p@h:6380/0?ssl_cert_reqs=none', 'memory://x', 'not a url',
];
const SETTINGS = {
  broker_url: 'redis://:pw@h:1/0', result_backend: 'redis://:pw@h/1', my_api_key: 'x', database_url: 'y', other: 'redis://:pw@h/2',
  nested: { password: 1, a: 2, backend_thing: 'amqp://u:p@h//' }, result_backend_transport_options: { a: 1 }, n: 3,
};

describe("censoring helpers give Celery's own answers", () => {
  it('maybe_sanitize_url and filter_hidden_settings, compared with Python', () => {
    const py = JSON.parse(execFileSync(PYTHON, ['-c', `
import json, sys
from celery.app.utils import filter_hidden_settings
from kombu.utils.url import maybe_sanitize_url
urls, settings = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({'urls': [maybe_sanitize_url(u) for u in urls], 'masked': [maybe_sanitize_url(u, mask='********') for u in urls], 'settings': filter_hidden_settings(settings)}))
`, JSON.stringify(URLS), JSON.stringify(SETTINGS)]).toString());
    expect(URLS.map((u) => maybeSanitizeUrl(u))).toEqual(py.urls);
    expect(URLS.map((u) => maybeSanitizeUrl(u, '********'))).toEqual(py.masked);
    expect(filterHiddenSettings(SETTINGS)).toEqual(py.settings);
  });

  it('log lines show URLs with their passwords masked', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', write: (l) => lines.push(l) });
    log.error('consumer: cannot connect to redis://:hunter2@10.0.0.1:6379/0 or amqp://u:hunter2@h//: refused');
    createLogger({ format: 'json', write: (l) => lines.push(l) }).warning('backend rediss://u:hunter2@h:6380/1 down');
    expect(lines.join('\n')).not.toContain('hunter2');
    expect(lines[0]).toContain('redis://:**@10.0.0.1:6379/0 or amqp://u:**@h//: refused');
    expect(JSON.parse(lines[1]!).message).toBe('backend rediss://u:**@h:6380/1 down');
  });
});

describe('a worker whose broker and backend URLs carry a password', () => {
  let p: Parity;
  let ts: Worker;
  let py: Worker;
  beforeAll(async () => {
    p = await startBroker();
    [ts, py] = await Promise.all([startCeleriac(p, 'ts@secrets', 'tsq'), startPython(p, 'py@secrets', 'pyq')]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([ts?.stop(), py?.stop()]);
    await p?.stop();
  });

  it('shows the URLs masked in its banner, as the Python worker does', () => {
    expect(ts.output()).not.toContain(PASSWORD);
    const line = (out: string, what: string) => out.split('\n').find((l) => l.includes(`.> ${what}:`))!.split(`.> ${what}:`)[1]!.trim();
    expect(line(ts.output(), 'transport')).toBe(line(py.output(), 'transport'));
    expect(line(ts.output(), 'results')).toBe(line(py.output(), 'results'));
  });

  it("replies to `celery inspect conf` with Celery's setting names, censored as the Python worker's", async () => {
    const replies = await pyInspect(p, 'conf', ['ts@secrets', 'py@secrets']);
    expect(JSON.stringify(replies)).not.toContain(PASSWORD);
    const mine = replies['ts@secrets'] as Record<string, unknown>;
    const theirs = replies['py@secrets'] as Record<string, unknown>;
    expect(mine.broker_url).toBe(theirs.broker_url);
    expect(mine.result_backend).toBe(theirs.result_backend);
    expect(mine.broker_url).toContain(':********@');
    // dump_conf is the same command under its old name; with_defaults adds Celery-named defaults.
    const all = (await pyInspect(p, 'conf', ['ts@secrets'], ['True']))['ts@secrets'] as Record<string, unknown>;
    expect(all).toMatchObject({ broker_url: mine.broker_url, task_default_queue: 'celery', task_acks_late: false });
    expect(JSON.stringify(all)).not.toContain(PASSWORD);
  });

  it('celeriac inspect conf and report show no password either', async () => {
    const conf = await celeriacCli(p, ['inspect', 'conf', '--json', '-t', '5', '-d', 'ts@secrets']);
    expect(conf).not.toContain(PASSWORD);
    expect(JSON.parse(conf)['ts@secrets'].broker_url).toBe(p.broker.replace(PASSWORD, '********'));
    const report = await celeriacCli(p, ['inspect', 'report', '-t', '5', '-d', 'ts@secrets']);
    expect(report).not.toContain(PASSWORD);
    expect(report).toContain(`broker_url: '${p.broker.replace(PASSWORD, '********')}'`);
  });

  it('an error about the URL shows it masked', async () => {
    const err = await celeriacCli(p, ['-b', `foo://:${PASSWORD}@127.0.0.1:${p.port}/0`, 'inspect', 'ping']).catch((e: Error) => e.message);
    expect(err).toContain('unsupported broker URL scheme');
    expect(err).not.toContain(PASSWORD);
  });
});
