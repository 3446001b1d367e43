import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The seeded fault-injection runs are timing-sensitive on a loaded machine: they run with
    // `npm run chaos` (see docs/RELIABILITY.md), not in every test run.
    exclude: ['test/chaos/chaos.test.ts', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
