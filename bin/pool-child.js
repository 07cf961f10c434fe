// A worker pool child (process or thread): loads celeriac the way its parent did (bin/celeriac.js),
// from the build or from the sources under tsx, then runs the child entry.
import { register as registerHooks } from 'node:module';

if (process.argv.includes('--celeriac-sources')) {
  const { register } = await import('tsx/esm/api');
  register();
  registerHooks('./source-condition.js', import.meta.url);
  await import('../src/cli/pool-child.ts');
} else {
  await import('../dist/cli/pool-child.js');
}
