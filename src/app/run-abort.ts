/**
 * How a running task is stopped (revoke with terminate, time limits, cold shutdown). The
 * AbortController behind `signal` is only made when the task looks at its signal or is aborted:
 * most runs do neither, and one controller per task is a measurable share of the worker's CPU.
 */
export class RunAbort {
  private controller: AbortController | undefined;
  private listener: ((reason: unknown) => void) | undefined;
  private read = false;

  get signal(): AbortSignal {
    this.read = true;
    return (this.controller ??= new AbortController()).signal;
  }

  /** Whether the task has looked at its signal, and so may handle a soft time limit itself. */
  get watched(): boolean {
    return this.read;
  }

  get aborted(): boolean {
    return this.controller?.signal.aborted ?? false;
  }

  abort(reason: unknown): void {
    const controller = (this.controller ??= new AbortController());
    if (controller.signal.aborted) return;
    controller.abort(reason);
    this.listener?.(reason);
  }

  /** The trace's own listener (one, set once per run): called on abort, or at once if aborted already. */
  onAbort(listener: (reason: unknown) => void): void {
    this.listener = listener;
    if (this.aborted) listener(this.controller!.signal.reason);
  }
}
