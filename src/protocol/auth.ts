/**
 * Celery's `auth` serializer (celery.security): the serialized body is signed with the sender's
 * private key (RSA-PSS, MGF1 and the largest salt, with `securityDigest`), and the message carries
 * signer, signature, inner content type, inner encoding and body, joined by \x00\x01 and base64'd.
 * The signer is the certificate's issuer values and serial number; a receiver verifies against the
 * certificate of that id in its store before it decodes anything.
 */
import { constants, createPrivateKey, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigurationError, DecodeError } from '../errors.ts';
import type { Message } from './message.ts';
import { decodeBody, encodeBody, type Serializer } from './serializers.ts';

const SEP = Buffer.from([0x00, 0x01]);
const CONTENT_TYPE = 'application/data';

export interface SecurityOptions {
  /** PEM private key, or the path of its file. */
  key: string;
  /** PEM certificate of that key, or the path of its file. */
  certificate: string;
  /** A directory of PEM certificates, a glob-free file path, or a list of PEM strings. */
  certStore: string | string[];
  digest?: string;
  /** The serializer of the signed body (Celery's default: json). */
  serializer?: string;
}

/** Celery's `Certificate.get_id()`: the issuer's attribute values joined by spaces, then the serial number in decimal. */
export function certificateId(cert: X509Certificate): string {
  const issuer = cert.issuer.split('\n').map((line) => line.slice(line.indexOf('=') + 1)).join(' ');
  return `${issuer} ${BigInt(`0x${cert.serialNumber}`).toString()}`;
}

function pem(value: string, what: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (err) {
    throw new ConfigurationError(`${what} ${JSON.stringify(value)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function certificate(text: string, where: string): X509Certificate {
  try {
    return new X509Certificate(text);
  } catch (err) {
    throw new ConfigurationError(`invalid certificate in ${where}: ${(err as Error).message}`);
  }
}

/** Celery's FSCertStore: every certificate of a directory (or one file); expired ones are refused. */
function loadStore(store: string | string[]): Map<string, X509Certificate> {
  const certs = new Map<string, X509Certificate>();
  const add = (cert: X509Certificate, where: string) => {
    if (Date.parse(cert.validTo) <= Date.now()) throw new ConfigurationError(`expired certificate in securityCertStore: ${certificateId(cert)} (${where})`);
    certs.set(certificateId(cert), cert);
  };
  if (Array.isArray(store)) {
    store.forEach((text, i) => add(certificate(text, `securityCertStore[${i}]`), `securityCertStore[${i}]`));
    return certs;
  }
  let files: string[];
  try {
    files = fs.statSync(store).isDirectory() ? fs.readdirSync(store).sort().map((f) => path.join(store, f)) : [store];
  } catch (err) {
    throw new ConfigurationError(`securityCertStore ${JSON.stringify(store)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  for (const file of files) if (fs.statSync(file).isFile()) add(certificate(fs.readFileSync(file, 'utf8'), file), file);
  return certs;
}

export class SecureSerializer implements Serializer {
  readonly contentType = CONTENT_TYPE;
  readonly contentEncoding = 'utf-8';
  private readonly key: KeyObject;
  private readonly signer: Buffer;
  private readonly store: Map<string, X509Certificate>;
  private readonly digest: string;
  private readonly inner: string;

  constructor(opts: SecurityOptions) {
    try {
      this.key = createPrivateKey(pem(opts.key, 'securityKey'));
    } catch (err) {
      if (err instanceof ConfigurationError) throw err;
      throw new ConfigurationError(`invalid private key in securityKey: ${(err as Error).message}`);
    }
    this.signer = Buffer.from(certificateId(certificate(pem(opts.certificate, 'securityCertificate'), 'securityCertificate')));
    this.store = loadStore(opts.certStore);
    this.digest = (opts.digest ?? 'sha256').toLowerCase();
    this.inner = opts.serializer ?? 'json';
  }

  encode(value: unknown): Buffer {
    const inner = encodeBody(value, this.inner);
    const signature = sign(this.digest, inner.body, { key: this.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
    const fields = Buffer.concat([this.signer, SEP, signature, SEP, Buffer.from(inner.contentType), SEP, Buffer.from(inner.contentEncoding), SEP, inner.body]);
    return Buffer.from(fields.toString('base64'));
  }

  decode(text: string, message: Message): unknown {
    const raw = Buffer.from(text, 'base64');
    const first = raw.indexOf(SEP);
    if (first < 0) throw new DecodeError('signed message is malformed: no signer', message);
    const signer = raw.subarray(0, first).toString('utf8');
    const cert = this.store.get(signer);
    if (!cert) throw new DecodeError(`Unknown certificate: ${JSON.stringify(signer)} is not in securityCertStore`, message);
    const sigLength = (cert.publicKey.asymmetricKeyDetails?.modulusLength ?? 0) >> 3;
    const sigStart = first + SEP.length;
    const signature = raw.subarray(sigStart, sigStart + sigLength);
    const rest = raw.subarray(sigStart + sigLength + SEP.length);
    const a = rest.indexOf(SEP);
    const b = a < 0 ? -1 : rest.indexOf(SEP, a + SEP.length);
    if (b < 0) throw new DecodeError('signed message is malformed: missing content type or encoding', message);
    const body = rest.subarray(b + SEP.length);
    const ok = verify(this.digest, body, { key: cert.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
    if (!ok) throw new DecodeError(`Bad signature: the message signed by ${JSON.stringify(signer)} was altered or signed with another key`, message);
    const inner: Message = { ...message, contentType: rest.subarray(0, a).toString('utf8'), contentEncoding: rest.subarray(a + SEP.length, b).toString('utf8'), body, headers: { ...message.headers, compression: undefined } };
    return decodeBody(inner);
  }
}
