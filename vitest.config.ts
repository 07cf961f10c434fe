import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests spawn workers and brokers; two files at a time fit a 2-core machine.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
