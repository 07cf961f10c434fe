/** Node's timers overflow past 2^31-1 ms (24.8 days) and then fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer that may be set for any time ahead: it re-arms in steps until its deadline has come. */
export interface LongTimeout {
  clear(): void;
}

/** Call `fn` once `ms` milliseconds have passed (a deadline of any length), unless cleared first. */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  return setTimeoutAt(fn, Date.now() + Math.max(0, ms));
}

/** Call `fn` at the wall-clock time `deadline` (Unix ms), checking the clock again at each step. */
export function setTimeoutAt(fn: () => void, deadline: number): LongTimeout {
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = deadline - Date.now();
    if (left <= 0) return fn();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
