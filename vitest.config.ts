import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time, also on 2 cores (vitest's default there is one): most of a test's
    // time is spent waiting on the processes it started (loom, git, agent CLIs), and every test
    // waits on conditions with deadlines, never on fixed sleeps. The whole suite takes 12 to 27
    // minutes this way on a 2-core build machine, depending on the machine (it is CPU-bound: the
    // loom processes the tests start take most of it), against 28 one file at a time.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
  },
});
