/**
 * Role files of the original Loom: Markdown without front matter, `{{workspace}}` for the
 * repository, companion files beside them (README.md, auditor.md, ...). They load; their text
 * starts the prompt, followed by Loom's bridge and the built-in role's task and output contract.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { defaultRolesDir, loadRole } from '../../src/config/role-file.js';
import { fillTemplate } from '../../src/core/prompt-template.js';

const MIN = 60_000;
let dir: string;
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function loomDir(files: Record<string, string>): string {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-orig-roles-'));
  fs.mkdirSync(path.join(dir, 'roles'), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'roles', name), text);
  fs.writeFileSync(path.join(dir, 'config.json'), '{}');
  return dir;
}

const ORIGINAL_JUDGE = `# Pull Request Judge

You are a thorough and constructive PR evaluator working in the {{workspace}} repository.

## Workflow

1. Find PRs with \`gh pr list --label loom:review-requested\`.
2. Approve by adding \`loom:pr\`.
`;

describe('original role files', () => {
  it('a role file without front matter loads: its text first, {{workspace}} as the repository, then the bridge and the built-in task with its output contract', () => {
    const d = loomDir({ 'judge.md': ORIGINAL_JUDGE });
    const role = loadRole('judge', [path.join(d, 'roles'), defaultRolesDir()]);
    expect(role.original).toBe(true);
    expect(role.file).toBe(path.join(d, 'roles', 'judge.md'));
    expect(role.interval).toBe(5 * MIN); // the built-in judge's settings apply
    const prompt = fillTemplate(role.template, { repo: '/srv/sample', 'pr.number': '12', diff: 'the diff' });
    expect(prompt.startsWith('# Pull Request Judge\n\nYou are a thorough and constructive PR evaluator working in the /srv/sample repository.')).toBe(true);
    expect(prompt).toMatch(/## How this role runs under Loom/);
    expect(prompt.indexOf('How this role runs under Loom')).toBeGreaterThan(prompt.indexOf('gh pr list'));
    expect(prompt).toMatch(/VERDICT: APPROVE\nVERDICT: REQUEST_CHANGES/);
    expect(prompt).toMatch(/PR #12/);
    expect(role.notes).toEqual([]);
  });

  it('an unknown placeholder is reported once, not fatal, and reaches the agent as written', () => {
    const d = loomDir({ 'builder.md': '# Builder\n\nWorking on {{REPO_OWNER}}/{{REPO_NAME}} in {{workspace}}; CI uses ${{ secrets.TOKEN }} and {{REPO_NAME}} again.\n' });
    const config = loadConfig(path.join(d, 'config.json'), {});
    expect(config.notes).toHaveLength(1);
    expect(config.notes[0]).toMatch(/roles\/builder\.md: \{\{REPO_OWNER\}\}, \{\{REPO_NAME\}\}, \{\{ secrets\.TOKEN \}\} have no value in Loom/);
    const prompt = fillTemplate(config.roles.builder.template, { repo: '/r' });
    expect(prompt).toMatch(/^# Builder\n\nWorking on \{\{REPO_OWNER\}\}\/\{\{REPO_NAME\}\} in \/r; CI uses \$\{\{ secrets\.TOKEN \}\} and \{\{REPO_NAME\}\} again\./);
  });

  it('the original’s other files in .loom/roles/ are left alone with one note; a misspelt role name is still an error', () => {
    const d = loomDir({ 'judge.md': ORIGINAL_JUDGE, 'README.md': '# Roles\n', 'auditor.md': '# Auditor\n', 'shepherd.md': '# Shepherd\n', 'builder-pr.md': '# PR\n', 'judge.json': '{"name":"Judge"}' });
    const config = loadConfig(path.join(d, 'config.json'), {});
    expect(config.notes).toEqual([`${path.join(d, 'roles')}: README.md, auditor.md, builder-pr.md, shepherd.md are not roles of this Loom (files of the original Loom); left alone`]);
    fs.writeFileSync(path.join(d, 'roles', 'bulider.md'), '# Builder\n');
    expect(() => loadConfig(path.join(d, 'config.json'), {})).toThrow(/bulider\.md: not a role.*did you mean builder\.md/);
  });

  it('front matter that lost its opening --- is still an error, and so is an empty file', () => {
    const d = loomDir({ 'judge.md': 'interval: 5m\n---\nReview it.\n' });
    expect(() => loadConfig(path.join(d, 'config.json'), {})).toThrow(/judge\.md:1: missing front matter/);
    fs.writeFileSync(path.join(d, 'roles', 'judge.md'), '');
    expect(() => loadConfig(path.join(d, 'config.json'), {})).toThrow(/judge\.md:1: missing front matter/);
  });

  it('an original role file that got front matter keeps {{workspace}} as the repository', () => {
    const d = loomDir({ 'judge.md': `---\ninterval: 7m\n---\n${ORIGINAL_JUDGE}` });
    const config = loadConfig(path.join(d, 'config.json'), {});
    expect(config.roles.judge.interval).toBe(7 * MIN);
    expect(fillTemplate(config.roles.judge.template, { repo: '/r' })).toMatch(/evaluator working in the \/r repository/);
  });

  it('{{=text}} in a Loom role file is the literal {{text}}', () => {
    const d = loomDir({ 'guide.md': '---\ninterval: 15m\n---\nKeep {{=this}} as is for {{repo}}.\n' });
    const config = loadConfig(path.join(d, 'config.json'), {});
    expect(fillTemplate(config.roles.guide.template, { repo: 'r' })).toBe('Keep {{this}} as is for r.');
  });
});
