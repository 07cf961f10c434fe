import os from 'node:os';
import type { ResultBackend } from '../backend/result-backend.ts';
import { maskUrl } from '../common/censor.ts';
import { VERSION } from '../version.ts';
import type { Worker } from './worker.ts';

/** The start-up banner, laid out as Celery's. */
export function banner(worker: Worker, backend: ResultBackend | undefined): string {
  const app = worker.app;
  const tasks = [...app.tasks.keys()].sort();
  const lines = [
    '',
    ` -------------- ${worker.hostname} v${VERSION} (celeriac)`,
    `--- ***** ----- `,
    `-- ******* ---- ${os.type()}-${os.release()}-${os.arch()} ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`,
    `- *** --- * --- `,
    `- ** ---------- [config]`,
    `- ** ---------- .> app:         ${app.main}`,
    `- ** ---------- .> transport:   ${maskedBroker(worker)}`,
    `- ** ---------- .> results:     ${backend ? maskUrl(backend.url) : 'disabled://'}`,
    `- *** --- * --- .> concurrency: ${worker.autoscaler ? `{min=${worker.autoscaler.min}, max=${worker.autoscaler.max}}` : worker.concurrency} (${worker.poolName})`,
    `-- ******* ---- .> task events: ${worker.events?.taskEvents ? 'ON' : 'OFF (enable -E to monitor tasks in this worker)'}`,
    `--- ***** ----- `,
    ` -------------- [queues]`,
    ...worker.queues.map((q) => `                .> ${q.padEnd(16)} exchange=${q}(direct) key=${q}`),
    '',
    '[tasks]',
    ...tasks.map((t) => `  . ${t}`),
    '',
    '',
  ];
  return lines.join('\n');
}

function maskedBroker(worker: Worker): string {
  return maskUrl(worker.app.conf.broker);
}
