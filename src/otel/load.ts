/**
 * OpenTelemetry is used when the application has `@opentelemetry/api` (an optional peer
 * dependency): it is looked up at run time, never imported statically, so celeriac installs and
 * runs without it. `CELERIAC_OPENTELEMETRY=off` leaves it out even when present.
 */
import { createRequire } from 'node:module';
import type * as Api from '@opentelemetry/api';
import { instrument } from './instrument.ts';

function loadApi(): typeof Api | undefined {
  if (/^(0|false|off|no)$/i.test(process.env.CELERIAC_OPENTELEMETRY ?? '')) return undefined;
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as typeof Api;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

// Nothing is exported: the published declarations must not need @opentelemetry/api.
const api = loadApi();
if (api) instrument(api);
