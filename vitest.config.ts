import { defineConfig } from 'vitest/config';

// Tests run in forked processes: TF.js backends and the wasm runtime keep global state. Their
// temporary folders live under one folder per run, removed at its end (test/global-setup.ts).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
