import { ConfigurationError } from '../errors.ts';

/** Celery's broker_use_ssl (and redis_backend_use_ssl) as an object: the files and checks of a TLS connection. */
export interface BrokerSslConfig {
  /** PEM file of the CAs that signed the broker's certificate (default: the system's). */
  caCerts?: string;
  /** PEM file of a client certificate, for brokers that ask for one. */
  certfile?: string;
  /** Its private key (default: read from certfile). */
  keyfile?: string;
  /** Check the broker's certificate: 'required' (default), 'optional' or 'none'; Python's ssl.CERT_* numbers (0, 1, 2) too. */
  certReqs?: 'none' | 'optional' | 'required' | 0 | 1 | 2;
}

/** Each setting's spellings: camelCase, py-amqp's broker_use_ssl keys, redis-py's. */
const KEYS: Record<keyof BrokerSslConfig, readonly string[]> = {
  caCerts: ['caCerts', 'ca_certs', 'ssl_ca_certs'],
  certfile: ['certfile', 'ssl_certfile'],
  keyfile: ['keyfile', 'ssl_keyfile'],
  certReqs: ['certReqs', 'cert_reqs', 'ssl_cert_reqs'],
};
const CERT_REQS = ['none', 'optional', 'required'] as const;

export function validateBrokerSsl(value: unknown, key = 'brokerUseSsl', celery = 'broker_use_ssl'): boolean | BrokerSslConfig {
  const bad = (what: string) => new ConfigurationError(`configuration ${key} (Celery's ${celery}) ${what}`);
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`must be true, false or an object {caCerts, certfile, keyfile, certReqs}, got ${JSON.stringify(value)}`);
  const input = value as Record<string, unknown>;
  const known = Object.values(KEYS).flat();
  const unknown = Object.keys(input).filter((k) => !known.includes(k));
  if (unknown.length) throw bad(`has unknown key ${JSON.stringify(unknown[0])}: expected caCerts, certfile, keyfile, certReqs`);
  const out: BrokerSslConfig = {};
  for (const [name, spellings] of Object.entries(KEYS) as [keyof BrokerSslConfig, readonly string[]][]) {
    const given = spellings.filter((k) => input[k] !== undefined);
    if (given.length > 1) throw bad(`gives ${name} twice (${given.join(', ')})`);
    if (given.length === 0) continue;
    const v = input[given[0]!];
    if (name === 'certReqs') {
      const word = typeof v === 'number' ? CERT_REQS[v] : typeof v === 'string' ? v.toLowerCase().replace(/^cert_/, '') : undefined;
      if (!word || !(CERT_REQS as readonly string[]).includes(word)) throw bad(`certReqs must be 'required', 'optional' or 'none' (or ssl.CERT_* 2, 1, 0), got ${JSON.stringify(v)}`);
      out.certReqs = word as (typeof CERT_REQS)[number];
    } else {
      if (typeof v !== 'string' || !v) throw bad(`${name} must be a file path, got ${JSON.stringify(v)}`);
      out[name] = v;
    }
  }
  return out;
}

/** The transport options (kombu's names) that brokerUseSsl or redisBackendUseSsl stands for. */
export function brokerSslTransportOptions(ssl: boolean | BrokerSslConfig): Record<string, unknown> {
  if (ssl === false) return {};
  if (ssl === true) return { ssl: true };
  const out: Record<string, unknown> = { ssl: true };
  if (ssl.caCerts) out.ssl_ca_certs = ssl.caCerts;
  if (ssl.certfile) out.ssl_certfile = ssl.certfile;
  if (ssl.keyfile) out.ssl_keyfile = ssl.keyfile;
  if (ssl.certReqs !== undefined) out.ssl_cert_reqs = ssl.certReqs;
  return out;
}
