// End-to-end tests run the built `loom` binary as a user would: build it once, fresh, first. Then
// set up one test repository (`git init`, a commit, `loom init`) that every test copies.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initRepo, REPO_TEMPLATE_ENV } from './helpers/loom-repo.js';

export function setup(): () => void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  const template = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-repo-template-')));
  initRepo(template);
  // Test workers start after the global setup, with its environment.
  process.env[REPO_TEMPLATE_ENV] = template;
  return () => fs.rmSync(template, { recursive: true, force: true });
}
