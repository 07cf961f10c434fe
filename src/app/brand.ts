/**
 * Brand that marks a celeriac app, so code that must recognise an app (the --app finder)
 * does not import the Celery class itself. Symbol.for: two copies of celeriac in one
 * process still recognise each other's apps.
 */
export const CELERIAC_APP = Symbol.for('celeriac.app');

export function isCeleriacApp(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[CELERIAC_APP] === true;
}
