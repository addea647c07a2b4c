import { defineConfig } from 'vitest/config';

// Tests run in forked processes: TF.js backends and the wasm runtime keep global state.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
