// A fresh clone's `npm ci` prints nothing a newcomer has to look up (README, "Quick start"):
// every dependency with an install script is reviewed in `allowScripts` (npm 11 warns about the
// others), and the only package whose `engines` rules out the Node version the README asks for
// is the one whose EBADENGINE warning the README explains.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';

interface LockPackage {
  version?: string;
  engines?: { node?: string };
  hasInstallScript?: boolean;
  optional?: boolean;
}

const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockPackage> };
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { engines: { node: string }; allowScripts: Record<string, boolean> };
const readme = fs.readFileSync('README.md', 'utf8');
const nameOf = (key: string) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);

/** Whether one `||` alternative of an `engines.node` range admits Node `major` (enough for the ranges in the lockfile). */
function admits(alternative: string, major: number): boolean {
  const a = alternative.trim();
  if (a === '' || a === '*') return true;
  const atLeast = /^>=?\s*v?(\d+)/.exec(a);
  if (atLeast) return Number(atLeast[1]) <= major;
  const exact = /^[\^~]?v?(\d+)(?:[.\sx]|$)/.exec(a);
  return exact !== null && Number(exact[1]) === major;
}

describe('npm ci', () => {
  it('has no install script allowScripts does not cover', () => {
    const unreviewed = Object.entries(lock.packages)
      .filter(([key, p]) => key !== '' && p.hasInstallScript === true)
      .map(([key]) => nameOf(key))
      .filter((name) => !(name in pkg.allowScripts));
    expect(unreviewed).toEqual([]);
  });

  it('warns about an engine only where the README says what the warning means', () => {
    const minimum = Number(/(\d+)/.exec(pkg.engines.node)?.[1]);
    expect(readme).toContain(`Node.js ≥ ${pkg.engines.node.replace(/^>=\s*/, '')}`);
    const excluding = Object.entries(lock.packages)
      .filter(([key, p]) => key !== '' && p.optional !== true && p.engines?.node !== undefined && !p.engines.node.split('||').some((alt) => admits(alt, minimum)))
      .map(([key, p]) => `${nameOf(key)}@${p.version ?? '?'}`);
    expect(excluding).toEqual(['@anthropic-ai/claude-code@2.1.328']);
    for (const name of excluding) expect(readme).toContain(`npm warn EBADENGINE   package: '${name}'`);
  });
});
