/**
 * Role files: front matter parsing and its file:line errors, placeholder checking, override order
 * in `loadRole`, the built-in roles in `defaults/roles`, and `fillTemplate`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultRolesDir, loadRole, parseRoleFile, RoleFileError } from '../../src/config/role-file.js';
import { fillTemplate, TEMPLATE_VARIABLES } from '../../src/core/prompt-template.js';
import { ROLE_NAMES } from '../../src/core/vocabulary.js';

const MIN = 60_000;

function errorOf(fn: () => unknown): RoleFileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RoleFileError);
    return err as RoleFileError;
  }
  throw new Error('expected a RoleFileError');
}

describe('parseRoleFile', () => {
  it('parses front matter keys, comments, quoting and the template', () => {
    const text = [
      '---',
      '# a comment',
      'runtime: claude',
      '',
      'model: "claude-sonnet-4-5"   # trailing comment',
      "command: 'it''s here'",
      'timeout: 60m',
      'interval: 90',
      'cooldown: "1h30m"',
      'args: --verbose --max-turns 5',
      '---',
      '',
      '# Builder for {{ repo }}',
      'Issue #{{issue.number}}: {{issue.title}}',
      '',
    ].join('\n');
    const role = parseRoleFile(text, 'roles/builder.md', 'builder');
    expect(role).toEqual({
      name: 'builder',
      file: 'roles/builder.md',
      runtime: 'claude',
      model: 'claude-sonnet-4-5',
      command: "it's here",
      timeout: 60 * MIN,
      interval: 90_000,
      cooldown: 90 * MIN,
      args: '--verbose --max-turns 5',
      template: '# Builder for {{ repo }}\nIssue #{{issue.number}}: {{issue.title}}',
    });
  });

  it('leaves unset keys undefined and accepts empty front matter, CRLF and a BOM', () => {
    const role = parseRoleFile('\uFEFF---\r\n---\r\nHello {{role}}\r\n', 'x.md', 'x');
    expect(role).toEqual({ name: 'x', file: 'x.md', template: 'Hello {{role}}' });
  });

  it('handles double-quoted escapes and a # inside quotes', () => {
    const role = parseRoleFile('---\ncommand: "say \\"hi\\" # not a comment\\tnow"\n---\nbody\n', 'x.md', 'x');
    expect(role.command).toBe('say "hi" # not a comment\tnow');
  });

  it('keeps values containing colons and # not preceded by a space', () => {
    const role = parseRoleFile('---\ncommand: run --url=http://host:80/a#b\n---\n', 'x.md', 'x');
    expect(role.command).toBe('run --url=http://host:80/a#b');
    expect(role.template).toBe('');
  });

  it.each([
    ['no opening ---', 'runtime: claude\n---\nbody', 1, "missing front matter: the first line must be '---'"],
    ['an empty file', '', 1, "missing front matter: the first line must be '---'"],
    ['no closing ---', '---\nruntime: claude\nbody', 1, "front matter is not closed: no '---' line after this one"],
    ['a line that is not key: value', '---\nruntime: claude\njust words\n---\n', 3, "expected 'key: value', got 'just words'"],
    ['an indented line', '---\n  model: x\n---\n', 2, "expected 'key: value', got 'model: x'"],
    ['a list item', '---\nargs:\n- a\n---\n', 2, 'bad value for args: the value is empty'],
    ['an unknown key', '---\n\nmodle: x\n---\n', 3, "unknown key 'modle' (known: runtime, command, model, args, timeout, interval, cooldown)"],
    ['a duplicate key', '---\nmodel: a\n# c\nmodel: b\n---\n', 4, "duplicate key 'model' (first set on line 2)"],
    ['a bad runtime', '---\nruntime: cursor\n---\n', 2, "bad value for runtime: 'cursor' is not a runtime (one of: script, command, claude, codex, gemini, opencode)"],
    ['a bad duration', '---\ntimeout: soon\n---\n', 2, "bad value for timeout: 'soon' is not a duration (e.g. 90s, 15m, 1h30m)"],
    ['a boolean duration', '---\ninterval: true\n---\n', 2, "bad value for interval: 'true' is not a duration (e.g. 90s, 15m, 1h30m)"],
    ['a negative duration', '---\ncooldown: -5m\n---\n', 2, "bad value for cooldown: '-5m' is not a duration (e.g. 90s, 15m, 1h30m)"],
    ['an empty value', '---\nmodel:   # nothing\n---\n', 2, 'bad value for model: the value is empty'],
    ['an unterminated quote', '---\nmodel: "abc\n---\n', 2, 'bad value for model: unterminated quoted string'],
    ['text after a quote', '---\nmodel: "abc" def\n---\n', 2, "bad value for model: unexpected text after the quoted string: 'def'"],
    ['a bad escape', '---\nmodel: "a\\qb"\n---\n', 2, "bad value for model: unsupported escape '\\q' in a quoted string"],
  ])('reports %s at its line', (_case, text, line, problem) => {
    const err = errorOf(() => parseRoleFile(text, 'roles/judge.md', 'judge'));
    expect(err.file).toBe('roles/judge.md');
    expect(err.line).toBe(line);
    expect(err.problem).toBe(problem);
    expect(err.message).toBe(`roles/judge.md:${line}: ${problem}`);
    expect(err.name).toBe('RoleFileError');
  });

  it('reports an unknown template placeholder at its line in the file', () => {
    const text = '---\ntimeout: 5m\n---\n\nReview {{diff}}\nfor issue #{{ issue.numbr }} please\n';
    const err = errorOf(() => parseRoleFile(text, 'judge.md', 'judge'));
    expect(err.line).toBe(6);
    expect(err.message).toMatch(/^judge\.md:6: unknown template placeholder '\{\{ issue\.numbr \}\}' \(known: repo, role, /);
  });

  it('rejects an empty placeholder', () => {
    expect(errorOf(() => parseRoleFile('---\n---\na {{}} b', 'x.md', 'x')).line).toBe(3);
  });

  it('accepts every known placeholder, with or without spaces', () => {
    const body = TEMPLATE_VARIABLES.map((v, i) => (i % 2 === 0 ? `{{${v}}}` : `{{ ${v} }}`)).join('\n');
    expect(parseRoleFile(`---\n---\n${body}`, 'x.md', 'x').template).toBe(body);
  });
});

describe('loadRole', () => {
  const temps: string[] = [];
  afterEach(() => {
    for (const dir of temps.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  function dir(files: Record<string, string>): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-roles-'));
    temps.push(d);
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
    return d;
  }

  it('takes the first directory that holds the role', () => {
    const override = dir({ 'judge.md': '---\nmodel: override\n---\nmine\n' });
    const defaults = dir({ 'judge.md': '---\nmodel: default\n---\ntheirs\n', 'guide.md': '---\n---\nguide\n' });
    const judge = loadRole('judge', [override, defaults]);
    expect(judge).toMatchObject({ name: 'judge', file: path.join(override, 'judge.md'), model: 'override', template: 'mine' });
    const guide = loadRole('guide', [override, defaults]);
    expect(guide).toMatchObject({ file: path.join(defaults, 'guide.md'), template: 'guide' });
  });

  it('skips directories that do not exist', () => {
    const defaults = dir({ 'judge.md': '---\n---\nx\n' });
    expect(loadRole('judge', [path.join(defaults, 'missing'), defaults]).file).toBe(path.join(defaults, 'judge.md'));
  });

  it('reports errors in the overriding file, with its path', () => {
    const override = dir({ 'judge.md': '---\nmodel: a\nmodel: b\n---\n' });
    const defaults = dir({ 'judge.md': '---\n---\nok\n' });
    const err = errorOf(() => loadRole('judge', [override, defaults]));
    expect(err.message).toBe(`${path.join(override, 'judge.md')}:3: duplicate key 'model' (first set on line 2)`);
  });

  it('throws a line-0 error when no directory holds the role', () => {
    const a = dir({});
    const b = dir({});
    const err = errorOf(() => loadRole('champion', [a, b]));
    expect(err.line).toBe(0);
    expect(err.file).toBe(path.join(a, 'champion.md'));
    expect(err.message).toBe(`${path.join(a, 'champion.md')}: no role file for 'champion' (looked in: ${a}, ${b})`);
  });

  it('rejects a directory where the file should be', () => {
    const a = dir({});
    fs.mkdirSync(path.join(a, 'judge.md'));
    expect(errorOf(() => loadRole('judge', [a])).message).toBe(`${path.join(a, 'judge.md')}: is not a regular file`);
  });

  it('rejects role names that are not plain names', () => {
    const a = dir({});
    expect(errorOf(() => loadRole('../etc/passwd', [a])).line).toBe(0);
    expect(errorOf(() => loadRole('', [a])).line).toBe(0);
  });
});

describe('the built-in roles', () => {
  it('live in the package defaults/roles directory', () => {
    expect(defaultRolesDir()).toBe(path.resolve(import.meta.dirname, '../../defaults/roles'));
    expect(fs.statSync(defaultRolesDir()).isDirectory()).toBe(true);
  });

  it.each(ROLE_NAMES.map((name) => [name]))('%s parses, has an output contract and no runtime', (name) => {
    const role = loadRole(name, [defaultRolesDir()]);
    expect(role.runtime).toBeUndefined();
    expect(role.template).toMatch(/^## Output contract$/m);
    const lines = fs.readFileSync(role.file, 'utf8').split('\n').length;
    expect(lines).toBeGreaterThanOrEqual(40);
    expect(lines).toBeLessThanOrEqual(95);
  });

  it('every file there is a known role and parses', () => {
    const files = fs.readdirSync(defaultRolesDir()).filter((f) => f.endsWith('.md'));
    expect(files.map((f) => f.replace(/\.md$/, '')).sort()).toEqual([...ROLE_NAMES].sort());
    for (const f of files) {
      const text = fs.readFileSync(path.join(defaultRolesDir(), f), 'utf8');
      expect(() => parseRoleFile(text, f, f.replace(/\.md$/, ''))).not.toThrow();
    }
  });

  it('sets the documented timings', () => {
    const load = (name: string) => loadRole(name, [defaultRolesDir()]);
    expect(load('builder').timeout).toBe(60 * MIN);
    expect(load('guide').interval).toBe(15 * MIN);
    expect(load('champion').interval).toBe(10 * MIN);
    expect(load('judge').interval).toBe(5 * MIN);
    expect(load('doctor').interval).toBe(5 * MIN);
    expect(load('architect').cooldown).toBe(30 * MIN);
    expect(load('hermit').cooldown).toBe(30 * MIN);
  });

  it('use the issue body and the markers their parsers expect', () => {
    const template = (name: string) => loadRole(name, [defaultRolesDir()]).template;
    expect(template('builder')).toContain('{{issue.body}}');
    expect(template('builder')).toContain('{{test_command}}');
    expect(template('builder')).toMatch(/^NO CHANGES NEEDED: /m);
    expect(template('judge')).toContain('{{diff}}');
    expect(template('judge')).toContain('{{test_output}}');
    expect(template('judge')).toMatch(/^VERDICT: APPROVE$/m);
    expect(template('judge')).toMatch(/^VERDICT: REQUEST_CHANGES$/m);
    expect(template('doctor')).toContain('{{review}}');
    expect(template('doctor')).toContain('{{attempt}}');
    for (const generator of ['architect', 'hermit']) {
      expect(template(generator)).toContain('{{max_proposals}}');
      expect(template(generator)).toContain('{{open_issues}}');
      expect(template(generator)).toContain('{{open_proposals}}');
      expect(template(generator)).toMatch(/^PROPOSAL: .*\n[\s\S]*^END PROPOSAL$/m);
    }
    expect(template('curator')).toMatch(/^CURATE #<issue number>\n[\s\S]*^END CURATE$/m);
    expect(template('guide')).toMatch(/^URGENT #<issue number>: /m);
    expect(template('guide')).toMatch(/^COMMENT #<issue number>: /m);
    expect(template('champion')).toMatch(/^SUMMARY:$/m);
  });
});

describe('fillTemplate', () => {
  it('replaces placeholders with and without spaces', () => {
    expect(fillTemplate('#{{issue.number}} {{ issue.title }} in {{  repo  }}', { 'issue.number': '7', 'issue.title': 'Fix it', repo: 'o/r' })).toBe('#7 Fix it in o/r');
  });

  it('replaces a placeholder missing from vars with an empty string', () => {
    expect(fillTemplate('a{{review}}b', {})).toBe('ab');
    expect(fillTemplate('a{{ constructor }}b{{toString}}c', {})).toBe('abc');
  });

  it('does not expand placeholders inside substituted values, nor $ patterns', () => {
    expect(fillTemplate('{{issue.body}} {{repo}}', { 'issue.body': "{{repo}} $& $1 $'", repo: 'r' })).toBe("{{repo}} $& $1 $' r");
  });

  it('leaves text without placeholders alone', () => {
    const text = 'a { b } {c} {{ d\n}} `{{`';
    expect(fillTemplate(text, { d: 'x' })).toBe(text);
  });
});
