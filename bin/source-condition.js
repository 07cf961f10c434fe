// Module hook, registered by bin/celeriac.js when it runs celeriac's TypeScript sources: package
// imports of celeriac resolve to the sources as well (the "celeriac-source" export condition).
export async function resolve(specifier, context, nextResolve) {
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, 'celeriac-source'] });
}
