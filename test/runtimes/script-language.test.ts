import { describe, expect, it } from 'vitest';
import { parseScript } from '../../src/runtimes/script-language.js';
import type { Step } from '../../src/runtimes/script-language.js';

const fence = '```';

/** An issue body with one block for `role` (plus optional attempt) holding `lines`. */
function issue(header: string, ...lines: string[]): string {
  return ['Some issue text.', '', `${fence}loom-script ${header}`, ...lines, fence, ''].join('\n');
}

function steps(text: string, role = 'builder', attempt = 1): Step[] {
  const result = parseScript(text, role, attempt);
  if (!result.ok) throw new Error(result.error);
  return result.steps;
}

function error(text: string, role = 'builder', attempt = 1): string {
  const result = parseScript(text, role, attempt);
  if (result.ok) throw new Error('expected a parse error');
  return result.error;
}

describe('parseScript steps', () => {
  it('parses write with a heredoc: exact lines, newline-terminated', () => {
    const text = issue('builder', 'write src/sub.js <<EOF', 'export const sub = (a, b) => a - b;', '  indented', '', '# not a comment here', 'EOF');
    expect(steps(text)).toEqual([
      { type: 'write', line: 4, path: 'src/sub.js', content: 'export const sub = (a, b) => a - b;\n  indented\n\n# not a comment here\n' },
    ]);
  });

  it('parses append, delete, run, say, commit, sleep, hang and fail', () => {
    const text = issue(
      'builder',
      'append notes.md <<END',
      'more',
      'END',
      'delete old.txt',
      'run node --test && echo "ok"',
      'say VERDICT: APPROVE',
      'say   spaced  out',
      'say',
      'commit Add sub() helper',
      'sleep 0.25',
      'hang',
      'fail it is broken',
    );
    expect(steps(text)).toEqual([
      { type: 'append', line: 4, path: 'notes.md', content: 'more\n' },
      { type: 'delete', line: 7, path: 'old.txt' },
      { type: 'run', line: 8, command: 'node --test && echo "ok"' },
      { type: 'say', line: 9, text: 'VERDICT: APPROVE' },
      { type: 'say', line: 10, text: '  spaced  out' },
      { type: 'say', line: 11, text: '' },
      { type: 'commit', line: 12, message: 'Add sub() helper' },
      { type: 'sleep', line: 13, seconds: 0.25 },
      { type: 'hang', line: 14 },
      { type: 'fail', line: 15, message: 'it is broken' },
    ]);
  });

  it('ignores blank lines and # comments between steps, and tolerates indentation', () => {
    const text = issue('builder', '', '# first a greeting', '   say hi', '', '  # done');
    expect(steps(text)).toEqual([{ type: 'say', line: 6, text: 'hi' }]);
  });

  it('parses replace pairs, including multi-line pairs and deletions', () => {
    const text = issue('builder', 'replace src/a.js <<EOF', '- a - b', '+ b - a', '', '- one', '- two', '+ three', '- gone', '+', 'EOF');
    expect(steps(text)).toEqual([
      {
        type: 'replace',
        line: 4,
        path: 'src/a.js',
        edits: [
          { old: 'a - b', new: 'b - a' },
          { old: 'one\ntwo', new: 'three' },
          { old: 'gone', new: '' },
        ],
      },
    ]);
  });

  it('accepts an empty heredoc, a quoted tag, an indented terminator and CRLF line ends', () => {
    const text = [`${fence}loom-script builder`, 'write empty.txt <<EOF', 'EOF', "write b.txt << 'DONE'", 'x', '  DONE', fence].join('\r\n');
    expect(steps(text)).toEqual([
      { type: 'write', line: 2, path: 'empty.txt', content: '' },
      { type: 'write', line: 4, path: 'b.txt', content: 'x\n' },
    ]);
  });

  it('lets a longer fence hold a shorter one, e.g. when writing Markdown', () => {
    const text = ['````loom-script builder', 'write README.md <<EOF', '```js', 'x()', '```', 'EOF', '````'].join('\n');
    expect(steps(text)).toEqual([{ type: 'write', line: 2, path: 'README.md', content: '```js\nx()\n```\n' }]);
  });

  it('leaves paths unchecked: the executor validates them', () => {
    expect(steps(issue('builder', 'delete ../../etc/passwd'))).toEqual([{ type: 'delete', line: 4, path: '../../etc/passwd' }]);
  });
});

describe('parseScript block selection', () => {
  const body = [
    'Intro with some code:',
    `${fence}js`,
    'say not a script',
    fence,
    `${fence}loom-script builder`,
    'say builder any attempt',
    fence,
    `${fence}loom-script builder 2`,
    'say builder attempt 2',
    fence,
    `~~~loom-script judge`,
    'say VERDICT: REJECT',
    '~~~',
    `${fence}loom-script doctor 1`,
    'say doctor first round',
    fence,
  ].join('\n');

  const says = (role: string, attempt: number) => {
    const result = parseScript(body, role, attempt);
    if (!result.ok) throw new Error(result.error);
    return { found: result.found, texts: result.steps.map((s) => (s.type === 'say' ? s.text : s.type)) };
  };

  it('picks the block for the role', () => {
    expect(says('judge', 1)).toEqual({ found: true, texts: ['VERDICT: REJECT'] });
  });

  it('prefers a block for the exact attempt over one without an attempt', () => {
    expect(says('builder', 1)).toEqual({ found: true, texts: ['builder any attempt'] });
    expect(says('builder', 2)).toEqual({ found: true, texts: ['builder attempt 2'] });
    expect(says('builder', 3)).toEqual({ found: true, texts: ['builder any attempt'] });
  });

  it('reports found: false when no block fits the role and attempt', () => {
    expect(says('doctor', 2)).toEqual({ found: false, texts: [] });
    expect(says('architect', 1)).toEqual({ found: false, texts: [] });
    expect(parseScript('just prose, no blocks', 'judge', 1)).toEqual({ ok: true, steps: [], found: false });
    expect(parseScript(`${fence}loom-scripts judge\nsay x\n${fence}`, 'judge', 1)).toEqual({ ok: true, steps: [], found: false });
  });

  it('does not parse the steps of blocks for other roles', () => {
    const text = [issue('judge', 'frobnicate'), issue('builder', 'say fine')].join('\n');
    expect(steps(text)).toEqual([{ type: 'say', line: 10, text: 'fine' }]);
  });
});

describe('parseScript errors name the line', () => {
  it('unknown step', () => {
    expect(error(issue('builder', 'say ok', 'frobnicate now'))).toMatch(/^line 5: unknown step "frobnicate"/);
  });

  it('unterminated heredoc', () => {
    expect(error(issue('builder', 'write a.txt <<EOF', 'text'))).toMatch(/^line 4: heredoc EOF is not terminated/);
  });

  it('missing path', () => {
    expect(error(issue('builder', 'write <<EOF', 'x', 'EOF'))).toMatch(/^line 4: write needs a path/);
    expect(error(issue('builder', 'say a', 'delete'))).toMatch(/^line 5: delete needs a path/);
    expect(error(issue('builder', 'append'))).toMatch(/^line 4: append needs a path/);
  });

  it('write without a heredoc', () => {
    expect(error(issue('builder', 'write a.txt hello'))).toMatch(/^line 4: write needs a heredoc/);
  });

  it('missing arguments and bad values', () => {
    expect(error(issue('builder', 'run'))).toMatch(/^line 4: run needs a command/);
    expect(error(issue('builder', 'commit'))).toMatch(/^line 4: commit needs a message/);
    expect(error(issue('builder', 'sleep soon'))).toMatch(/^line 4: sleep needs a number/);
    expect(error(issue('builder', 'hang on'))).toMatch(/^line 4: hang takes no argument/);
  });

  it('malformed replace bodies', () => {
    expect(error(issue('builder', 'replace a.js <<EOF', '+ new', 'EOF'))).toMatch(/^line 5: a "\+ new" line needs a "- old" line/);
    expect(error(issue('builder', 'replace a.js <<EOF', '- old', 'EOF'))).toMatch(/^line 5: a "- old" line needs a "\+ new" line/);
    expect(error(issue('builder', 'replace a.js <<EOF', '- a', '+ b', 'c', 'EOF'))).toMatch(/^line 7: replace lines must start with/);
    expect(error(issue('builder', 'replace a.js <<EOF', 'EOF'))).toMatch(/^line 4: replace needs at least one/);
    expect(error(issue('builder', 'replace a.js <<EOF', '-', '+ x', 'EOF'))).toMatch(/^line 5: replace cannot search for empty text/);
  });

  it('block headers: missing role, bad attempt, unclosed block, duplicates', () => {
    expect(error(`x\n${fence}loom-script\nsay a\n${fence}`)).toMatch(/^line 2: loom-script block needs a role/);
    expect(error(`${fence}loom-script builder first\nsay a\n${fence}`)).toMatch(/^line 1: loom-script attempt must be a positive whole number/);
    expect(error(`${fence}loom-script builder 0\nsay a\n${fence}`)).toMatch(/^line 1: loom-script attempt/);
    expect(error(`a\nb\n${fence}loom-script builder\nsay a\n`)).toMatch(/^line 3: loom-script block is not closed/);
    expect(error(`${issue('builder', 'say a')}\n${issue('builder', 'say b')}`)).toMatch(/^line 9: second loom-script block for builder \(first at line 3\)/);
  });
});
