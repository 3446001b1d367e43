/**
 * The script-agent language: deterministic agent instructions written in an issue body as fenced
 * blocks (```` ```loom-script <role> [attempt] ````), so the whole pipeline runs without a model.
 * This module only parses; it touches nothing. Paths are checked by the executor (`script-agent`),
 * which knows the working directory.
 */

export type Step =
  | { type: 'write'; line: number; path: string; content: string }
  | { type: 'append'; line: number; path: string; content: string }
  | { type: 'delete'; line: number; path: string }
  | { type: 'replace'; line: number; path: string; edits: Replacement[] }
  | { type: 'run'; line: number; command: string }
  | { type: 'say'; line: number; text: string }
  | { type: 'commit'; line: number; message: string }
  | { type: 'sleep'; line: number; seconds: number }
  | { type: 'hang'; line: number }
  | { type: 'fail'; line: number; message: string };

export interface Replacement {
  old: string;
  new: string;
}

export type ParseResult = { ok: true; steps: Step[]; found: boolean } | { ok: false; error: string };

interface Line {
  /** 1-based line number in the whole text, for error messages. */
  number: number;
  text: string;
}

interface Block {
  role: string;
  attempt: number | null;
  /** Line number of the opening fence. */
  line: number;
  body: Line[];
}

class ScriptError extends Error {}

const fail = (line: number, message: string): never => {
  throw new ScriptError(`line ${line}: ${message}`);
};

// CommonMark fences: up to three spaces of indent, three or more backticks or tildes. A longer
// fence lets a block contain a shorter one (e.g. a heredoc writing a Markdown file).
const OPEN_FENCE = /^ {0,3}(`{3,}|~{3,})\s*loom-script(?=\s|$)(.*)$/;

/** Picks the block for `role` (an exact `attempt` match beats a block without one) and parses it. */
export function parseScript(text: string, role: string, attempt: number): ParseResult {
  try {
    const blocks = findBlocks(text);
    const candidates = blocks.filter((b) => b.role === role);
    const exact = candidates.filter((b) => b.attempt === attempt);
    const general = candidates.filter((b) => b.attempt === null);
    const chosen = exact.length > 0 ? exact : general;
    const [block, duplicate] = chosen;
    if (block === undefined) return { ok: true, steps: [], found: false };
    // Two candidates would make the script depend on which one we happened to pick.
    if (duplicate !== undefined) fail(duplicate.line, `second loom-script block for ${describe(block)} (first at line ${block.line})`);
    return { ok: true, steps: parseSteps(block.body), found: true };
  } catch (error) {
    if (error instanceof ScriptError) return { ok: false, error: error.message };
    throw error;
  }
}

function describe(block: Block): string {
  return block.attempt === null ? block.role : `${block.role} attempt ${block.attempt}`;
}

function findBlocks(text: string): Block[] {
  // Issue bodies from web forms often carry CRLF line ends.
  const lines = text.split(/\r?\n/);
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN_FENCE.exec(lines[i] ?? '');
    if (open === null) continue;
    const number = i + 1;
    const fence = open[1] ?? '```';
    const [role, attemptText, ...rest] = (open[2] ?? '').trim().split(/\s+/).filter((w) => w !== '');
    if (role === undefined) fail(number, 'loom-script block needs a role: ```loom-script <role> [attempt]');
    if (rest.length > 0) fail(number, `unexpected text after the attempt in the loom-script header: ${rest.join(' ')}`);
    let blockAttempt: number | null = null;
    if (attemptText !== undefined) {
      if (!/^[1-9]\d*$/.test(attemptText)) fail(number, `loom-script attempt must be a positive whole number, got "${attemptText}"`);
      blockAttempt = Number(attemptText);
    }
    const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const body: Line[] = [];
    let closed = false;
    for (i += 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      if (close.test(line)) {
        closed = true;
        break;
      }
      body.push({ number: i + 1, text: line });
    }
    if (!closed) fail(number, `loom-script block is not closed (no ${fence} line after it)`);
    blocks.push({ role: role ?? '', attempt: blockAttempt, line: number, body });
  }
  return blocks;
}

// `<path> <<TAG`, the tag optionally quoted (as in sh, where quoting only turns off expansion).
const HEREDOC = /^(\S+)\s+<<\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\2$/;

function parseSteps(body: Line[]): Step[] {
  const steps: Step[] = [];
  let i = 0;
  const heredoc = (verb: string, line: Line, rest: string): { path: string; lines: Line[] } => {
    const target = rest.split(/\s+/)[0] ?? '';
    if (target === '' || target.startsWith('<<')) fail(line.number, `${verb} needs a path: ${verb} <path> <<TAG`);
    const match = HEREDOC.exec(rest.trim());
    const tag = match?.[3];
    if (tag === undefined) return fail(line.number, `${verb} needs a heredoc: ${verb} <path> <<TAG`);
    const lines: Line[] = [];
    for (i += 1; i < body.length; i++) {
      const next = body[i] as Line;
      if (next.text.trim() === tag) return { path: target, lines };
      lines.push(next);
    }
    return fail(line.number, `heredoc ${tag} is not terminated (no line "${tag}" before the end of the block)`);
  };
  for (; i < body.length; i++) {
    const line = body[i] as Line;
    const text = line.text.trim();
    if (text === '' || text.startsWith('#')) continue;
    const space = text.search(/\s/);
    const verb = space === -1 ? text : text.slice(0, space);
    // The argument keeps inner spacing as written: `say` prints it verbatim.
    const rest = space === -1 ? '' : text.slice(space + 1);
    const n = line.number;
    switch (verb) {
      case 'write':
      case 'append': {
        const doc = heredoc(verb, line, rest);
        steps.push({ type: verb, line: n, path: doc.path, content: doc.lines.map((l) => `${l.text}\n`).join('') });
        break;
      }
      case 'replace': {
        const doc = heredoc(verb, line, rest);
        steps.push({ type: 'replace', line: n, path: doc.path, edits: parseReplacements(line, doc.lines) });
        break;
      }
      case 'delete': {
        const words = rest.split(/\s+/).filter((w) => w !== '');
        if (words.length === 0) fail(n, 'delete needs a path: delete <path>');
        if (words.length > 1) fail(n, 'delete takes one path');
        steps.push({ type: 'delete', line: n, path: words[0] as string });
        break;
      }
      case 'run':
        if (rest.trim() === '') fail(n, 'run needs a command: run <shell command>');
        steps.push({ type: 'run', line: n, command: rest });
        break;
      case 'say':
        steps.push({ type: 'say', line: n, text: rest });
        break;
      case 'commit':
        if (rest.trim() === '') fail(n, 'commit needs a message: commit <message>');
        steps.push({ type: 'commit', line: n, message: rest });
        break;
      case 'sleep': {
        const seconds = Number(rest.trim());
        if (rest.trim() === '' || !Number.isFinite(seconds) || seconds < 0) fail(n, `sleep needs a number of seconds, got "${rest.trim()}"`);
        steps.push({ type: 'sleep', line: n, seconds });
        break;
      }
      case 'hang':
        if (rest.trim() !== '') fail(n, 'hang takes no argument');
        steps.push({ type: 'hang', line: n });
        break;
      case 'fail':
        steps.push({ type: 'fail', line: n, message: rest.trim() === '' ? 'failed' : rest });
        break;
      default:
        fail(n, `unknown step "${verb}" (expected write, append, delete, replace, run, say, commit, sleep, hang or fail)`);
    }
  }
  return steps;
}

/**
 * A replace body is pairs: one or more `- old` lines, then one or more `+ new` lines. Consecutive
 * lines of one kind join with newlines, so a pair may span lines. One space after the marker is
 * dropped (`- foo` is "foo"); a bare `+` is an empty line, so `-` text with a lone `+` deletes it.
 */
function parseReplacements(start: Line, lines: Line[]): Replacement[] {
  const edits: Replacement[] = [];
  // The pair being read: its `-` lines (and where they start), then its `+` lines.
  let pair: { line: number; old: string[]; new: string[] | null } | null = null;
  const finish = (current: { line: number; old: string[]; new: string[] | null }) => {
    if (current.new === null) fail(current.line, 'a "- old" line needs a "+ new" line after it');
    const old = current.old.join('\n');
    if (old === '') fail(current.line, 'replace cannot search for empty text');
    edits.push({ old, new: (current.new ?? []).join('\n') });
  };
  for (const line of lines) {
    if (line.text.trim() === '') continue;
    const body = line.text.trimStart();
    const value = body.slice(1).replace(/^ /, '');
    if (body.startsWith('-')) {
      if (pair?.new) {
        finish(pair);
        pair = null;
      }
      pair ??= { line: line.number, old: [], new: null };
      pair.old.push(value);
    } else if (body.startsWith('+')) {
      if (pair === null) return fail(line.number, 'a "+ new" line needs a "- old" line before it');
      pair.new ??= [];
      pair.new.push(value);
    } else {
      fail(line.number, 'replace lines must start with "- " (old text) or "+ " (new text)');
    }
  }
  if (pair !== null) finish(pair);
  if (edits.length === 0) fail(start.number, 'replace needs at least one "- old" / "+ new" pair');
  return edits;
}
