// `loom init --claude` writes the Claude Code slash commands and never overwrites a user's own:
// an existing command stays, ours goes beside it with a one-line note, or nothing is written
// when the file already says what ours says.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInit } from '../../src/setup/init-repo.js';

let root: string;
let lines: string[];

beforeEach(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-slash-')));
  spawnSync('git', ['init', '-q'], { cwd: root });
  lines = [];
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const commands = () => path.join(root, '.claude', 'commands');
const read = (name: string) => fs.readFileSync(path.join(commands(), name), 'utf8');
const init = () => runInit({ cwd: root, claude: true, log: (line) => lines.push(line) });

describe('loom init --claude', () => {
  it('writes /loom and /shepherd with Claude Code front matter limited to the loom command', async () => {
    await init();
    for (const name of ['loom.md', 'shepherd.md']) {
      const text = read(name);
      const front = /^---\n([\s\S]*?)\n---\n/.exec(text)?.[1] ?? '';
      expect(front, name).toMatch(/^description: \S.+$/m);
      expect(front, name).toMatch(/^argument-hint: \S.+$/m);
      expect(front, name).toMatch(/^allowed-tools: Bash\(loom:\*\)$/m);
      expect(text, name).toContain('$ARGUMENTS');
    }
    // Nothing that would block the Claude Code session: the daemon only ever starts detached.
    expect(read('loom.md')).toContain('loom start --detach');
    expect(read('loom.md')).not.toMatch(/^\s*loom \$ARGUMENTS\s*$/m);
    expect(read('shepherd.md')).toContain('loom spawn');
  });

  it("keeps the user's own loom.md and shepherd.md and writes ours beside them, with a note", async () => {
    fs.mkdirSync(commands(), { recursive: true });
    fs.writeFileSync(path.join(commands(), 'loom.md'), '# My own loom command\n');
    fs.writeFileSync(path.join(commands(), 'shepherd.md'), '# My own shepherd command\n');
    await init();
    expect(read('loom.md')).toBe('# My own loom command\n');
    expect(read('shepherd.md')).toBe('# My own shepherd command\n');
    expect(read('loom.loom-new.md')).toContain('allowed-tools: Bash(loom:*)');
    expect(read('shepherd.loom-new.md')).toContain('allowed-tools: Bash(loom:*)');
    const notes = lines.filter((l) => /kept your \.claude\/commands\/(loom|shepherd)\.md/.test(l));
    expect(notes).toHaveLength(2);
    for (const note of notes) expect(note).not.toContain('\n');
    expect(notes.join('\n')).toMatch(/\.claude\/commands\/loom\.loom-new\.md/);
  });

  it('writes nothing when the files already say what ours say, and again nothing on a second run beside a user file', async () => {
    await init();
    const ours = { loom: read('loom.md'), shepherd: read('shepherd.md') };
    const mtime = fs.statSync(path.join(commands(), 'loom.md')).mtimeMs;
    lines = [];
    await init();
    expect(read('loom.md')).toBe(ours.loom);
    expect(fs.statSync(path.join(commands(), 'loom.md')).mtimeMs).toBe(mtime);
    expect(fs.readdirSync(commands()).sort()).toEqual(['loom.md', 'shepherd.md']);
    expect(lines.join('\n')).toMatch(/already up to date/);

    fs.writeFileSync(path.join(commands(), 'loom.md'), '# Mine\n');
    await init();
    const beside = fs.statSync(path.join(commands(), 'loom.loom-new.md')).mtimeMs;
    await init();
    expect(fs.statSync(path.join(commands(), 'loom.loom-new.md')).mtimeMs).toBe(beside);
    expect(read('loom.md')).toBe('# Mine\n');
  });

  it('replaces a command file an earlier `loom init --claude` wrote, unchanged (it is ours)', async () => {
    fs.mkdirSync(commands(), { recursive: true });
    const earlier = '# Shepherd\n\nDrive one issue through Loom\'s lifecycle by running:\n\n```bash\nloom shepherd $ARGUMENTS\n```\n\nARGUMENTS: $ARGUMENTS\n';
    fs.writeFileSync(path.join(commands(), 'shepherd.md'), earlier);
    await init();
    expect(read('shepherd.md')).toContain('allowed-tools: Bash(loom:*)');
    expect(fs.existsSync(path.join(commands(), 'shepherd.loom-new.md'))).toBe(false);
  });
});
