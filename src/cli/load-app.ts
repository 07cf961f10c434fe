import { Celery } from '../app/celery.ts';
import { findApp, resolveAppName } from './find-app.ts';

export interface AppOptions {
  app?: string;
  broker?: string;
  resultBackend?: string;
  config?: string;
  workdir?: string;
}

/**
 * The app named by -A (or $CELERY_APP), else a default app, in --workdir; then --config (a module
 * of settings, Celery's) and -b, --result-backend override its config.
 */
export async function loadApp(opts: AppOptions): Promise<Celery> {
  if (opts.workdir) process.chdir(opts.workdir);
  const name = resolveAppName({ cliValue: opts.app });
  const app = name ? ((await findApp(name)).app as Celery) : new Celery('default');
  if (opts.config) await app.configFromObject(opts.config);
  if (opts.broker) app.conf.broker = opts.broker;
  if (opts.resultBackend) app.conf.backend = opts.resultBackend;
  return app;
}
