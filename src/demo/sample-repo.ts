/**
 * The demo's sample repository: a small real Node project with its own tests, and issues whose
 * bodies carry `loom-script` instructions for the built-in script agent — some pass first time,
 * one needs a doctor round (the judge's test gate fails first), one needs no changes, one fails.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Label } from '../core/labels.js';

const FILES: Record<string, string> = {
  'package.json': `${JSON.stringify({ name: 'sample-calc', version: '1.0.0', private: true, type: 'module', scripts: { test: 'node --test' } }, null, 2)}\n`,
  'README.md': '# sample-calc\n\nA tiny calculator library.\n\n- `add(a, b)` returns the sum of `a` and `b`.\n- `greet(name)` returns a greeting.\n',
  'src/add.js': 'export const add = (a, b) => a + b;\n',
  'src/greet.js': "export const greet = (name) => `Hello, ${name}`;\n",
  'test/add.test.js': "import assert from 'node:assert/strict';\nimport { test } from 'node:test';\nimport { add } from '../src/add.js';\n\ntest('add', () => assert.equal(add(2, 3), 5));\n",
  'test/greet.test.js': "import assert from 'node:assert/strict';\nimport { test } from 'node:test';\nimport { greet } from '../src/greet.js';\n\ntest('greet', () => assert.equal(greet('Ada'), 'Hello, Ada'));\n",
};

const fence = '```';

/** A builder block adding `src/<name>.js` and its test. */
function newFunction(name: string, body: string, testLine: string, runTests = true): string {
  return `${fence}loom-script builder
write src/${name}.js <<EOF
export const ${name} = ${body};
EOF
write test/${name}.test.js <<EOF
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ${name} } from '../src/${name}.js';

test('${name}', () => ${testLine});
EOF
${runTests ? 'run node --test\n' : ''}commit Add ${name}()
${fence}`;
}

export interface SampleIssue {
  title: string;
  body: string;
  labels: string[];
  /** What the demo expects to happen to it. */
  expect: 'merged' | 'no-changes' | 'blocked';
}

export const SAMPLE_ISSUES: SampleIssue[] = [
  {
    title: 'Add a subtract function',
    body: `We need \`subtract(a, b)\`.\n\n${newFunction('subtract', '(a, b) => a - b', 'assert.equal(subtract(5, 3), 2)')}`,
    labels: [Label.issue],
    expect: 'merged',
  },
  {
    title: 'Fix the greeting punctuation',
    body: `\`greet\` should end with an exclamation mark.\n\n${fence}loom-script builder
replace src/greet.js <<EOF
- \`Hello, \${name}\`
+ \`Hello, \${name}!\`
EOF
replace test/greet.test.js <<EOF
- 'Hello, Ada'
+ 'Hello, Ada!'
EOF
${fence}`,
    labels: [Label.issue, Label.urgent],
    expect: 'merged',
  },
  {
    title: 'Add a multiply function',
    body: `We need \`multiply(a, b)\`.\n\n${newFunction('multiply', '(a, b) => a * b', 'assert.equal(multiply(4, 3), 12)')}`,
    labels: [Label.issue],
    expect: 'merged',
  },
  {
    title: 'Add a divide function',
    body: `We need \`divide(a, b)\`. (The first attempt has a bug the test gate catches; the doctor fixes it.)\n\n${newFunction('divide', '(a, b) => a * b', 'assert.equal(divide(12, 3), 4)', false)}\n\n${fence}loom-script doctor
replace src/divide.js <<EOF
- a * b
+ a / b
EOF
run node --test
${fence}`,
    labels: [Label.issue],
    expect: 'merged',
  },
  {
    title: 'Document the add function',
    body: `The README should document \`add\`.\n\n${fence}loom-script builder
run grep -q 'add(a, b)' README.md
say NO CHANGES NEEDED: the README already documents add(a, b)
${fence}`,
    labels: [Label.issue],
    expect: 'no-changes',
  },
  {
    title: 'Rewrite everything in a weekend',
    body: `Rewrite the library from scratch.\n\n${fence}loom-script builder
fail This is too large to do safely in one change; it needs to be split up by a human.
${fence}`,
    labels: [Label.issue],
    expect: 'blocked',
  },
  {
    title: 'Add a clamp function',
    body: `We need \`clamp(x, lo, hi)\`.\n\n${newFunction('clamp', '(x, lo, hi) => Math.min(hi, Math.max(lo, x))', 'assert.equal(clamp(9, 0, 5), 5)')}`,
    labels: [Label.issue],
    expect: 'merged',
  },
  {
    title: 'Add a negate function',
    body: `Proposed by the Architect: \`negate(x)\`.\n\n${newFunction('negate', '(x) => -x', 'assert.equal(negate(2), -2)')}`,
    labels: [Label.architect],
    expect: 'merged',
  },
];

/** Writes the sample project into `root` (an empty directory) and commits it on `main`. */
export function writeSampleProject(root: string): void {
  for (const [file, content] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), content);
  }
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  };
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('-c', 'user.name=Loom Demo', '-c', 'user.email=demo@localhost', 'commit', '-qm', 'sample-calc: initial version');
}

/** The demo's `.loom/config.json`: every agent role on the script runtime, tests as the judge's gate. */
export const SAMPLE_CONFIG = {
  runtime: 'script',
  testCommand: 'node --test',
  maxShepherds: 3,
  pollInterval: '2s',
  heartbeatInterval: '1s',
  issueThreshold: 0,
  roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } },
};
