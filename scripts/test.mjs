#!/usr/bin/env node
// The whole test suite: prepares what the tests need from the system, builds, runs vitest, and
// ends with one plain line `N passed, N failed`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function git(args) {
  return spawnSync('git', args, { encoding: 'utf8' });
}

// Tests make real commits: make sure git has an identity and a default branch name.
if (!git(['config', '--global', 'user.name']).stdout.trim()) git(['config', '--global', 'user.name', 'Loom Tests']);
if (!git(['config', '--global', 'user.email']).stdout.trim()) git(['config', '--global', 'user.email', 'loom-tests@localhost']);
if (!git(['config', '--global', 'init.defaultBranch']).stdout.trim()) git(['config', '--global', 'init.defaultBranch', 'main']);

// System packages from Debian, installed once, as root (one `apt-get update` for all):
// - bubblewrap, as on most Linux desktops (Flatpak brings it): with it, Codex runs its tool calls
//   in its own sandbox, and the suite must pass that way too;
// - chromium, the real browser the dashboard's browser test drives (that test fails without it);
// - redis-server: the distributed tests (test/e2e/distributed.test.ts) start one of their own per
//   test on a free port.
const packages = [
  ['/usr/bin/bwrap', 'bubblewrap', 'the suite runs without it'],
  ['/usr/bin/chromium', 'chromium', 'the dashboard browser test will fail'],
  ['/usr/bin/redis-server', 'redis-server', 'the distributed tests will fail'],
].filter(([file]) => !fs.existsSync(file));
if (packages.length > 0 && process.getuid?.() === 0 && fs.existsSync('/usr/bin/apt-get')) {
  const quiet = { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  const updated = spawnSync('apt-get', ['update', '-qq'], quiet).status === 0;
  for (const [, name, without] of packages) {
    const ok = updated && spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', name], quiet).status === 0;
    if (!ok) process.stderr.write(`warning: installing ${name} failed; ${without}\n`);
  }
}

// The opencode CLI lives in its own folder (see tools/opencode/package.json); install it once.
const opencode = path.join('tools', 'opencode');
if (!fs.existsSync(path.join(opencode, 'node_modules', '.bin', 'opencode'))) {
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock'], { cwd: opencode, stdio: 'inherit' });
  if (r.status !== 0) process.stderr.write('warning: installing the opencode CLI failed; its runtime tests will fail\n');
}

// The lint (eslint, tsc, the layer rules of .dependency-cruiser.cjs, knip's unused exports) is
// one check of the suite: a violation fails CI like a failing test.
const lint = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: 'inherit' });
const lintFailed = lint.status !== 0;
if (lintFailed) process.stderr.write('lint failed: see above (npm run lint)\n');

const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-test-report-')), 'vitest.json');
const vitest = spawnSync(
  process.execPath,
  ['node_modules/vitest/vitest.mjs', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR } },
);

let passed = 0;
let failed = 0;
try {
  const result = JSON.parse(fs.readFileSync(report, 'utf8'));
  passed = result.numPassedTests;
  failed = result.numFailedTests + (result.numRuntimeErrorTestSuites ?? 0);
  if (result.numFailedTestSuites > 0 && failed === 0) failed = result.numFailedTestSuites;
} catch {
  failed = Math.max(1, failed);
}
if (vitest.status !== 0 && failed === 0) failed = 1;
if (lintFailed) failed += 1;
else passed += 1;
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed > 0 || vitest.status !== 0 ? 1 : 0;
