import { defineConfig } from 'vitest/config';

// Dawn's native module is happiest in child processes (the forks pool); each test file
// creates its own device and destroys it at the end so the worker exits cleanly.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
