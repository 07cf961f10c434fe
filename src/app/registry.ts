import type { Celery } from './celery.ts';
import { canvasHooks } from './hooks.ts';
import type { Task } from './task.ts';

/** The task registry of an app: its own tasks, and Celery's builtins (from the canvas) on demand. */
export class TaskRegistry extends Map<string, Task> {
  private readonly builtins = new Map<string, Task>();

  constructor(private readonly app: Celery) {
    super();
  }

  override get(name: string): Task | undefined {
    const own = super.get(name);
    if (own) return own;
    let task = this.builtins.get(name);
    if (!task) {
      task = canvasHooks.builtinTask.call(this.app, name);
      if (task) this.builtins.set(name, task);
    }
    return task;
  }
}
