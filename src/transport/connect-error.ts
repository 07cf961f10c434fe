import { CeleriacError } from '../errors.ts';

/**
 * The broker could not be reached: `Cannot connect to <url>: <reason>`. `retry` is false when
 * retrying cannot help (a wrong password, a database the server does not have, an untrusted
 * certificate): the worker then stops at once instead of retrying.
 */
export class BrokerConnectionError extends CeleriacError {
  constructor(
    readonly url: string,
    readonly reason: string,
    readonly retry: boolean,
  ) {
    super(`Cannot connect to ${url}: ${reason}`);
    this.name = 'BrokerConnectionError';
  }
}
