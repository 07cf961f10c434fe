import { ConfigurationError } from '../errors.ts';
import { SecureSerializer } from '../protocol/auth.ts';
import { registerSerializer } from '../protocol/serializers.ts';
import type { ResolvedConfig } from './config.ts';

export interface SetupSecurityOptions {
  /** Serializers still allowed besides auth (Celery's `allowed_serializers`); default none. */
  allowedSerializers?: string[];
  key?: string;
  cert?: string;
  store?: string | string[];
  digest?: string;
  /** The serializer of the signed body: json. */
  serializer?: string;
}

/**
 * Celery's `app.setup_security()`: task messages are signed with securityKey and verified against
 * securityCertStore; the app must send `auth` and accept only `auth`, since signing what is not
 * verified protects nothing.
 */
export function setupSecurity(conf: ResolvedConfig, opts: SetupSecurityOptions = {}): void {
  const allowed = opts.allowedSerializers ?? [];
  if (conf.taskSerializer !== 'auth' || conf.acceptContent.some((c) => c !== 'auth' && !allowed.includes(c)) || !conf.acceptContent.includes('auth')) {
    throw new ConfigurationError(
      "message signing needs taskSerializer: 'auth' and acceptContent: ['auth'] (Celery's task_serializer and accept_content): " +
        'there is no point in signing messages that are not verified',
    );
  }
  const key = opts.key ?? conf.securityKey;
  const certificate = opts.cert ?? conf.securityCertificate;
  const certStore = opts.store ?? conf.securityCertStore;
  if (!key || !certificate || !certStore) {
    throw new ConfigurationError('message signing needs securityKey, securityCertificate and securityCertStore (paths of PEM files; the store may be a directory)');
  }
  registerSerializer('auth', new SecureSerializer({ key, certificate, certStore, digest: opts.digest ?? conf.securityDigest, serializer: opts.serializer }));
}
