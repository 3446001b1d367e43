// The script agent run for real, as a child process, in a temporary git repository.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scriptAgentArgv } from '../../src/runtimes/script-runtime.js';

const fence = '```';
let root: string;
let scratch: string;

function git(...args: string[]): string {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeEach(() => {
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-script-agent-')));
  root = path.join(scratch, 'repo');
  fs.mkdirSync(root);
  git('init', '-q', '-b', 'main');
  git('config', 'user.name', 'Loom Tests');
  git('config', 'user.email', 'tests@localhost');
  fs.writeFileSync(path.join(root, 'README.md'), '# sample\n');
  git('add', '.');
  git('commit', '-qm', 'initial');
});

afterEach(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

interface AgentRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the agent with `instructions` as the issue text, as `role` (attempt `attempt`). */
function agent(instructions: string, role = 'builder', attempt = 1, env: NodeJS.ProcessEnv = {}): AgentRun {
  const file = path.join(scratch, 'instructions.md');
  fs.writeFileSync(file, instructions);
  const [command, ...args] = scriptAgentArgv();
  const r = spawnSync(command!, args, {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOOM_INSTRUCTIONS_FILE: file, LOOM_ROLE: role, LOOM_ATTEMPT: String(attempt), ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function block(header: string, ...lines: string[]): string {
  return [`${fence}loom-script ${header}`, ...lines, fence].join('\n');
}

const read = (p: string) => fs.readFileSync(path.join(root, p), 'utf8');
const exists = (p: string) => fs.existsSync(path.join(root, p));

describe('script agent', () => {
  it('writes, appends, replaces and deletes files, printing a line per step', () => {
    fs.writeFileSync(path.join(root, 'old.txt'), 'bye\n');
    const r = agent(
      block(
        'builder',
        'write src/sub.js <<EOF',
        'export const sub = (a, b) => a - b;',
        'EOF',
        'append src/sub.js <<EOF',
        'export const neg = (a) => -a;',
        'EOF',
        'replace src/sub.js <<EOF',
        '- a - b',
        '+ b - a',
        '- -a',
        '+ 0 - a',
        'EOF',
        'delete old.txt',
      ),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(read('src/sub.js')).toBe('export const sub = (a, b) => b - a;\nexport const neg = (a) => 0 - a;\n');
    expect(exists('old.txt')).toBe(false);
    expect(r.stdout.split('\n').filter((l) => l !== '')).toEqual([
      'script: write src/sub.js',
      'script: append src/sub.js',
      'script: replace src/sub.js',
      'script: delete old.txt',
    ]);
  });

  it('passes run output through and says lines verbatim', () => {
    const r = agent(block('judge', 'run echo from-run && echo to-stderr >&2', 'say Looks right.', 'say VERDICT: APPROVE'), 'judge');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('script: run echo from-run && echo to-stderr >&2\nfrom-run\nLooks right.\nVERDICT: APPROVE\n');
    expect(r.stderr).toBe('to-stderr\n');
  });

  it('fails on a failing run and stops there', () => {
    const r = agent(block('builder', 'run exit 3', 'write after.txt <<EOF', 'x', 'EOF'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('script: failed: line 2: run exit 3: exited with code 3\n');
    expect(exists('after.txt')).toBe(false);
  });

  it('fails a replace whose text is missing, leaving the file untouched', () => {
    fs.writeFileSync(path.join(root, 'a.js'), 'one\ntwo\n');
    const r = agent(block('builder', 'replace a.js <<EOF', '- one', '+ 1', '- three', '+ 3', 'EOF'));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('script: failed: line 2: replace a.js: text not found: "three"\n');
    expect(read('a.js')).toBe('one\ntwo\n');
  });

  it('fails deleting or replacing a file that does not exist', () => {
    expect(agent(block('builder', 'delete nope.txt')).stderr).toMatch(/line 2: delete nope.txt: no such file/);
    expect(agent(block('builder', 'replace nope.txt <<EOF', '- a', '+ b', 'EOF')).code).toBe(1);
  });

  it('fail prints its message to stderr as the last line and exits 1', () => {
    const r = agent(block('builder', 'say trying', 'fail the tests do not pass', 'say never'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('trying\n');
    expect(r.stderr).toBe('the tests do not pass\n');
  });

  it.each([
    ['../outside.txt', 'escapes the working directory'],
    ['src/../../outside.txt', 'escapes the working directory'],
    ['/tmp/outside.txt', 'absolute paths are not allowed'],
    ['.git/config', 'goes into .git'],
    ['src/.GIT/hooks/pre-commit', 'goes into .git'],
    ['.', 'names the working directory itself'],
  ])('refuses the path %s before doing anything', (target, why) => {
    const r = agent(block('builder', 'write first.txt <<EOF', 'x', 'EOF', `write ${target} <<EOF`, 'x', 'EOF'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`script: refused: line 5: ${target}: ${why}`);
    expect(exists('first.txt')).toBe(false);
    expect(fs.existsSync(path.join(scratch, 'outside.txt'))).toBe(false);
  });

  it('refuses a path that leads outside through a symlink', () => {
    fs.mkdirSync(path.join(scratch, 'elsewhere'));
    fs.symlinkSync(path.join(scratch, 'elsewhere'), path.join(root, 'link'));
    fs.symlinkSync('.git', path.join(root, 'gitlink'));
    const outside = agent(block('builder', 'write link/x.txt <<EOF', 'x', 'EOF'));
    expect(outside.code).toBe(2);
    expect(outside.stderr).toContain('link/x.txt: leads outside the working directory');
    expect(fs.readdirSync(path.join(scratch, 'elsewhere'))).toEqual([]);
    const intoGit = agent(block('builder', 'delete gitlink/HEAD'));
    expect(intoGit.code).toBe(2);
    expect(intoGit.stderr).toContain('gitlink/HEAD: leads into .git');
    expect(fs.existsSync(path.join(root, '.git', 'HEAD'))).toBe(true);
  });

  it('commits everything with the message', () => {
    const r = agent(block('builder', 'write src/sub.js <<EOF', 'export const sub = 1;', 'EOF', 'delete README.md', 'commit Add sub'));
    expect(r.code).toBe(0);
    expect(git('log', '-1', '--format=%s').trim()).toBe('Add sub');
    expect(git('status', '--porcelain')).toBe('');
    expect(git('show', '--name-status', '--format=').trim().split('\n').sort()).toEqual(['A\tsrc/sub.js', 'D\tREADME.md']);
  });

  it('uses the block for its attempt', () => {
    const text = [block('doctor', 'say any'), block('doctor 2', 'say second')].join('\n');
    expect(agent(text, 'doctor', 1).stdout).toBe('any\n');
    expect(agent(text, 'doctor', 2).stdout).toBe('second\n');
  });

  it('without a block: a judge approves, other roles do nothing', () => {
    const judge = agent('No script here.', 'judge');
    expect(judge.code).toBe(0);
    expect(judge.stdout.trim().split('\n').pop()).toBe('VERDICT: APPROVE');
    const builder = agent(block('judge', 'say VERDICT: REJECT'), 'builder');
    expect(builder.code).toBe(0);
    expect(builder.stdout).not.toContain('VERDICT');
    expect(git('status', '--porcelain')).toBe('');
  });

  it('refuses a script with a parse error, naming the line', () => {
    const r = agent(`Intro\n\n${block('builder', 'say ok', 'explode')}`);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('script: refused: line 5: unknown step "explode" (expected write, append, delete, replace, run, say, commit, sleep, hang or fail)\n');
  });

  it('refuses to run without its environment', () => {
    const r = agent('x', 'builder', 1, { LOOM_ROLE: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('LOOM_INSTRUCTIONS_FILE and LOOM_ROLE must be set');
  });
});

describe('script agent location', () => {
  // dist/ is built by the suite's global setup (test/global-setup.ts).
  const dist = path.resolve('dist/runtimes/script-runtime.js');
  it.skipIf(!fs.existsSync(dist))('runs the compiled sibling when it exists (dist/), with no tsx', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(dist)}); console.log(JSON.stringify(m.scriptAgentArgv()));`], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).toEqual([process.execPath, path.resolve('dist/runtimes/script-agent.js')]);
  });

  it('runs the .ts source through tsx when there is no compiled sibling (vitest)', () => {
    const argv = scriptAgentArgv();
    expect(argv[argv.length - 1]).toBe(path.resolve('src/runtimes/script-agent.ts'));
    expect(argv).toContain('--import');
  });
});
