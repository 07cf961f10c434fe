#!/usr/bin/env node
// Installed from npm (no src/), or with a JavaScript task module and an up-to-date build in a
// checkout, the CLI runs celeriac's build (dist/): a TypeScript task module then gets the tsx
// loader when it is imported (src/modules/typescript-loader.ts), and `import`/`require('celeriac')`
// in it resolve to that same build. In a checkout otherwise, tsx loads celeriac's sources and
// `import 'celeriac'` resolves to the sources too. Either way a process holds one copy of
// celeriac's classes.
import { register as registerHooks } from 'node:module';
import { appSpec, buildIsFresh, hasSources, isJavaScriptModule } from './launch.js';

const spec = appSpec(process.argv.slice(2), process.env);
if (!hasSources() || (spec !== undefined && isJavaScriptModule(spec) && buildIsFresh())) {
  const { main } = await import('../dist/cli/main.js');
  await main(process.argv);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  registerHooks('./source-condition.js', import.meta.url);
  const { main } = await import('../src/cli/main.ts');
  await main(process.argv);
}
