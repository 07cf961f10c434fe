/**
 * The first connection of an ioredis client, said in celeriac's words.
 *
 * ioredis retries every failure for ever: a wrong password, a database the server does not have
 * (it even goes on in DB 0 after SELECT failed) or an untrusted certificate would never end, and a
 * caller only sees a generic MaxRetriesPerRequestError. So, until a client has once been ready,
 * such a failure ends it: every pending and later command rejects with one line saying what to
 * change. `waitReady` lets a caller wait for the connection at most a given time.
 */
import type { Redis } from 'ioredis';
import { BrokerConnectionError } from '../connect-error.ts';
import { explainTlsError } from '../tls.ts';

interface State {
  url: string;
  everReady: boolean;
  fatal: BrokerConnectionError | undefined;
  last: Error | undefined;
  changed: Set<() => void>;
}

const states = new WeakMap<Redis, State>();

/** Why a connection never ready cannot become so by retrying; undefined when a retry may help. */
export function startupFailure(err: Error): string | undefined {
  const m = err.message.split('\n')[0]!.replace(/^Ready check failed: /, '');
  if (/DB index is out of range|invalid DB index/i.test(m)) return `the server has no such database (${m}); use a database number it has (0-15 unless its "databases" setting says more)`;
  if (/WRONGPASS|NOAUTH|invalid (username-)?password|AUTH failed/i.test(m)) return `authentication failed (${m}); check the user name and password in the URL`;
  const tls = explainTlsError(err);
  return tls === err ? undefined : tls.message;
}

/** Watch a new client; `url` is the masked URL named in errors. */
export function trackStartup(client: Redis, url: string): Redis {
  const st: State = { url, everReady: false, fatal: undefined, last: undefined, changed: new Set() };
  states.set(client, st);
  const changed = () => [...st.changed].forEach((f) => f());
  client.on('ready', () => {
    st.everReady = true;
    st.last = undefined;
    changed();
  });
  client.on('error', (err: Error) => {
    if (st.fatal) return;
    st.last = err;
    const why = st.everReady ? undefined : startupFailure(err);
    if (why) fail(client, st, new BrokerConnectionError(url, why, false));
    changed();
  });
  return client;
}

/** The error that ended the client before it was ever ready, if any. */
export function startupError(client: Redis): BrokerConnectionError | undefined {
  return states.get(client)?.fatal;
}

function fail(client: Redis, st: State, err: BrokerConnectionError): void {
  st.fatal = err;
  (client as unknown as { flushQueue(e: Error): void }).flushQueue(err);
  // As ioredis itself does in monitor mode: every later command is refused with the reason.
  (client as unknown as { sendCommand: unknown }).sendCommand = (command: { reject(e: Error): void; promise: Promise<unknown> }) => {
    command.reject(err);
    return command.promise;
  };
  client.disconnect();
}

/**
 * Resolve once the client is ready (connecting it if it is lazy); reject with a
 * BrokerConnectionError when it cannot be, at once, or after `timeoutMs` with the last reason
 * (with `untilError`, at the first failed attempt: the worker's start-up retries count those).
 */
export function waitReady(client: Redis, timeoutMs: number, untilError = false): Promise<void> {
  const st = states.get(client);
  if (client.status === 'ready' || !st) return Promise.resolve();
  if (st.fatal) return Promise.reject(st.fatal);
  if (client.status === 'wait') client.connect().catch(() => undefined);
  return new Promise((resolve, reject) => {
    const seen = st.last;
    const check = () => {
      if (client.status === 'ready') finish();
      else if (st.fatal) finish(st.fatal);
      else if (untilError && st.last && st.last !== seen) finish(new BrokerConnectionError(st.url, explainTlsError(st.last).message.split('\n')[0]!, true));
    };
    const timer = setTimeout(() => {
      const reason = st.last ? explainTlsError(st.last).message.split('\n')[0]! : `no connection within ${timeoutMs / 1000} s`;
      finish(new BrokerConnectionError(st.url, reason, true));
    }, timeoutMs);
    const finish = (err?: Error) => {
      clearTimeout(timer);
      st.changed.delete(check);
      if (err) reject(err);
      else resolve();
    };
    st.changed.add(check);
  });
}
