/**
 * TLS options of the network brokers, in the names of kombu's transport options:
 *   ssl             true turns TLS on for a plain URL (amqp://, redis://), as Celery's broker_use_ssl
 *   ssl_cert_reqs   none | optional | required (default required): check the server's certificate
 *   ssl_ca_certs, ssl_certfile, ssl_keyfile   PEM file paths: the CAs to trust, a client certificate and its key
 */
import fs from 'node:fs';
import { ConfigurationError } from '../errors.ts';

const CERT_REQS = ['none', 'optional', 'required'] as const;

export interface TlsSocketOptions {
  rejectUnauthorized: boolean;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Whether a connection with these options uses TLS: the URL's scheme says so, or `ssl` is on. */
export function usesTls(url: URL, secureProtocol: string, opts: Record<string, unknown>): boolean {
  if (url.protocol === secureProtocol) return true;
  const ssl = opts.ssl;
  if (ssl === undefined || ssl === null || ssl === '' || ssl === false) return false;
  if (ssl === true || (typeof ssl === 'object' && !Array.isArray(ssl))) return true;
  const word = String(ssl).toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(word)) return true;
  if (['0', 'false', 'no', 'off'].includes(word)) return false;
  throw new ConfigurationError(`transport option ssl must be true or false, not ${JSON.stringify(ssl)}`);
}

/** Node's TLS socket options from the ssl_* options; unreadable files are configuration errors. */
export function tlsSocketOptions(opts: Record<string, unknown>): TlsSocketOptions {
  const given = opts.ssl_cert_reqs ?? 'required';
  // Python's ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED are 0, 1, 2.
  const reqs = typeof given === 'number' ? (CERT_REQS[given] ?? String(given)) : String(given).toLowerCase().replace(/^cert_/, '');
  if (!(CERT_REQS as readonly string[]).includes(reqs)) throw new ConfigurationError(`ssl_cert_reqs must be none, optional or required (or ssl.CERT_* 0, 1, 2), not ${JSON.stringify(opts.ssl_cert_reqs)}`);
  const out: TlsSocketOptions = { rejectUnauthorized: reqs === 'required' };
  for (const [key, name] of [['ca', 'ssl_ca_certs'], ['cert', 'ssl_certfile'], ['key', 'ssl_keyfile']] as const) {
    const file = opts[name];
    if (file === undefined || file === null || file === '') continue;
    if (typeof file !== 'string') throw new ConfigurationError(`${name} must be a file path, not ${JSON.stringify(file)}`);
    try {
      out[key] = fs.readFileSync(file);
    } catch (err) {
      throw new ConfigurationError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a PEM file`);
    }
  }
  if (out.cert && !out.key) out.key = out.cert; // as Python's load_cert_chain: one PEM file with both
  return out;
}

const UNTRUSTED_SERVER = "the broker's certificate is not signed by a CA this client trusts: give that CA's PEM file as ssl_ca_certs (brokerUseSsl.caCerts), or set ssl_cert_reqs=none to skip the check";
const TLS_HINTS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN: UNTRUSTED_SERVER,
  DEPTH_ZERO_SELF_SIGNED_CERT: UNTRUSTED_SERVER,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: UNTRUSTED_SERVER,
  UNABLE_TO_GET_ISSUER_CERT: UNTRUSTED_SERVER,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: UNTRUSTED_SERVER,
  ERR_TLS_CERT_ALTNAME_INVALID: "connect with a host name the broker's certificate was issued for",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the broker asks for a client certificate: give ssl_certfile and ssl_keyfile (brokerUseSsl.certfile, keyfile)',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the broker refused the handshake; if it asks for a client certificate, give ssl_certfile and ssl_keyfile (brokerUseSsl.certfile, keyfile)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the broker does not trust the CA that signed the client certificate (ssl_certfile)',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the broker did not accept the client certificate (ssl_certfile)',
  ERR_SSL_WRONG_VERSION_NUMBER: "that port does not speak TLS: use the broker's TLS port (RabbitMQ's is 5671) or a plain URL without ssl",
};

/** A TLS failure said in a line, with what to change; other errors as they are. */
export function explainTlsError(err: Error): Error {
  const { code, reason } = err as Error & { code?: string; reason?: string };
  const hint = code ? TLS_HINTS[code] : undefined;
  if (!hint) return err;
  const what = (reason ?? err.message.split('\n')[0]!).replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, '');
  return Object.assign(new Error(`TLS: ${what}; ${hint}`), { code });
}
