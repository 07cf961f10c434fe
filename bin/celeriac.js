#!/usr/bin/env node
// TypeScript task modules (and celeriac's own sources) load without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
