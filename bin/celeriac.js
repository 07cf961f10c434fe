#!/usr/bin/env node
// With a JavaScript task module (e.g. compiled by the user's build) and celeriac's own build
// (dist/, made by `npm run build` on install) up to date, the CLI runs as plain JavaScript: no
// TypeScript loader thread, about 50 MB less memory per worker. Otherwise tsx loads TypeScript
// task modules and celeriac's sources, and `import 'celeriac'` resolves to the sources too, so a
// process only ever holds one copy of celeriac's classes.
import { register as registerHooks } from 'node:module';
import { appSpec, buildIsFresh, isJavaScriptModule } from './launch.js';

const spec = appSpec(process.argv.slice(2), process.env);
if (spec !== undefined && isJavaScriptModule(spec) && buildIsFresh()) {
  const { main } = await import('../dist/cli/main.js');
  await main(process.argv);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  registerHooks('./source-condition.js', import.meta.url);
  const { main } = await import('../src/cli/main.ts');
  await main(process.argv);
}
