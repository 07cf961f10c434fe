/**
 * Celery's built-in tasks that canvases rely on (`celery/app/builtins.py`), available in every app
 * without being registered (so they are not listed with the app's own tasks): `celery.map`,
 * `celery.starmap`, `celery.chunks`, and `celery.accumulate` (used by `replace` with a group).
 */
import type { Celery } from '../app/celery.ts';
import type { TaskContext } from '../app/context.ts';
import { Task } from '../app/task.ts';
import type { SignatureDict } from '../protocol/task-message.ts';
import { Chunks } from './map.ts';
import { Signature } from './signature.ts';

type Builtin = (app: Celery, self: TaskContext) => unknown;

const BUILTINS: Record<string, Builtin> = {
  'celery.accumulate': (_app, self) => {
    const index = self.request.kwargs.index;
    return typeof index === 'number' ? self.request.args[index] : self.request.args;
  },
  'celery.map': (app, self) => mapItems(app, self, false),
  'celery.starmap': (app, self) => mapItems(app, self, true),
  'celery.chunks': async (app, self) => {
    const { task, it, n } = self.request.kwargs as { task: SignatureDict; it: unknown[][]; n: number };
    return (await new Chunks(task, it, n, {}, app).applyAsync()).asTuple();
  },
};

/** Call the mapped task's function on each item, in this worker, one after the other. */
async function mapItems(app: Celery, self: TaskContext, star: boolean): Promise<unknown[]> {
  const { task, it } = self.request.kwargs as { task: SignatureDict; it: unknown[] };
  const t = app.getTask(Signature.fromDict(task, app).task);
  const out: unknown[] = [];
  for (const item of it ?? []) {
    const args = star ? (item as unknown[]) : [item];
    out.push(await (t.options.bind ? t.fn(self, ...args) : t.fn(...args)));
  }
  return out;
}

/** A builtin task for an app, made on first use (the app's registry keeps it). */
export function builtinTask(app: Celery, name: string): Task | undefined {
  if (!Object.hasOwn(BUILTINS, name)) return undefined;
  const run = BUILTINS[name]!;
  return new Task(app, { name, bind: true }, (self: TaskContext) => run(app, self));
}
