/**
 * Role files (PRODUCT.md §5): `.loom/roles/<role>.md` overriding the package's
 * `defaults/roles/<role>.md`. A role file is Markdown with a front matter block (a YAML subset:
 * `key: value` lines, `#` comments, blank lines) followed by the prompt template, whose
 * `{{ placeholders }}` must name known template variables. Every problem is reported as a
 * `RoleFileError` with `<file>:<line>: <problem>`, so a typo is caught when the role is loaded,
 * not when an agent receives a broken prompt.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoomError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { LITERAL_PREFIX, PLACEHOLDER, TEMPLATE_VARIABLES } from '../core/prompt-template.js';
import { RUNTIME_NAMES } from '../core/vocabulary.js';

export interface RoleDefinition {
  /** The role's name (`builder`, `judge`, ...). */
  name: string;
  /** The file the definition was read from. */
  file: string;
  runtime?: string;
  command?: string;
  model?: string;
  /** Longest a single run may take, ms. */
  timeout?: number;
  /** Time between runs of a support role, ms. */
  interval?: number;
  /** Time between triggers of a generator role, ms. */
  cooldown?: number;
  /** Extra arguments passed to the runtime's CLI. */
  args?: string;
  /** The prompt template (the Markdown after the front matter). */
  template: string;
  /**
   * Set for a role file of the original Loom (no front matter): its text is the start of the
   * prompt, followed by Loom's bridge and the built-in role's task and output contract.
   */
  original?: true;
  /** Things worth saying once about the file (an original placeholder with no value here). */
  notes?: string[];
}

/** A problem in a role file, at a 1-based line (0: the file as a whole). */
export class RoleFileError extends LoomError {
  readonly file: string;
  readonly line: number;
  readonly problem: string;

  constructor(file: string, line: number, problem: string) {
    super('role_file_invalid', line > 0 ? `${file}:${line}: ${problem}` : `${file}: ${problem}`, { userFixable: true });
    this.file = file;
    this.line = line;
    this.problem = problem;
  }
}

const STRING_KEYS = ['command', 'model', 'args'] as const;
const DURATION_KEYS = ['timeout', 'interval', 'cooldown'] as const;
const KNOWN_KEYS: readonly string[] = ['runtime', ...STRING_KEYS, ...DURATION_KEYS];

const DELIMITER = /^---[ \t]*$/;
const KEY_LINE = /^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(.*)$/;

/**
 * The original Loom's placeholders with a value here. Its role files used `{{workspace}}` (the
 * repository's directory); anything else of the form `{{...}}` is reported once and reaches the
 * agent as written.
 */
const ORIGINAL_PLACEHOLDERS: Readonly<Record<string, string>> = { workspace: 'repo' };

/**
 * A role file without front matter: the original Loom's (Markdown only, settings in a sidecar
 * `<role>.json` Loom does not read). Accepted, with its placeholders mapped.
 */
function parseOriginalRoleFile(lines: string[], file: string, name: string): RoleDefinition {
  const notes: string[] = [];
  const unknown = new Set<string>();
  const template = lines
    .join('\n')
    .trim()
    .replace(PLACEHOLDER, (match, inner: string) => {
      const mapped = ORIGINAL_PLACEHOLDERS[inner] ?? (TEMPLATE_VARIABLES.includes(inner) ? inner : undefined);
      if (mapped !== undefined) return `{{${mapped}}}`;
      if (inner.startsWith(LITERAL_PREFIX)) return match;
      unknown.add(match);
      return `{{${LITERAL_PREFIX}${match.slice(2)}`;
    });
  if (unknown.size > 0) notes.push(`${file}: ${[...unknown].join(', ')} ${unknown.size === 1 ? 'has' : 'have'} no value in Loom; the agent sees ${unknown.size === 1 ? 'it' : 'them'} as written (known placeholders: ${TEMPLATE_VARIABLES.join(', ')}; {{workspace}} is {{repo}})`);
  return { name, file, template, original: true, notes };
}

/** Whether the first lines look like front matter that lost its opening `---` (a `key: value` line, then `---`). */
function lostOpening(lines: string[]): boolean {
  const first = lines.findIndex((l) => l.trim() !== '');
  return first >= 0 && /^[A-Za-z_][A-Za-z0-9_-]*[ \t]*:( |$)/.test(lines[first] ?? '') && lines.slice(first + 1).some((l) => DELIMITER.test(l));
}

/**
 * Parses one role file's text; `file` is used in error messages only. A file without front
 * matter is the original Loom's role file: accepted as it is (see `parseOriginalRoleFile`).
 */
export function parseRoleFile(text: string, file: string, name: string): RoleDefinition {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  if (!DELIMITER.test(lines[0] ?? '')) {
    if (text.trim() === '' || lostOpening(lines)) throw new RoleFileError(file, 1, "missing front matter: the first line must be '---'");
    return parseOriginalRoleFile(lines, file, name);
  }
  let close = -1;
  for (let i = 1; i < lines.length; i++) {
    if (DELIMITER.test(lines[i] ?? '')) {
      close = i;
      break;
    }
  }
  if (close < 0) throw new RoleFileError(file, 1, "front matter is not closed: no '---' line after this one");

  const role: RoleDefinition = { name, file, template: '' };
  const seen = new Map<string, number>();
  for (let i = 1; i < close; i++) {
    const lineNo = i + 1;
    const line = lines[i] ?? '';
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = KEY_LINE.exec(line);
    if (match === null) throw new RoleFileError(file, lineNo, `expected 'key: value', got '${clip(trimmed)}'`);
    const key = match[1] ?? '';
    if (!KNOWN_KEYS.includes(key)) throw new RoleFileError(file, lineNo, `unknown key '${key}' (known: ${KNOWN_KEYS.join(', ')})`);
    const first = seen.get(key);
    if (first !== undefined) throw new RoleFileError(file, lineNo, `duplicate key '${key}' (first set on line ${first})`);
    seen.set(key, lineNo);
    const value = scalar(match[2] ?? '');
    if (typeof value !== 'string') throw new RoleFileError(file, lineNo, `bad value for ${key}: ${value.error}`);
    if (value === '') throw new RoleFileError(file, lineNo, `bad value for ${key}: the value is empty`);
    setKey(role, key, value, (problem) => new RoleFileError(file, lineNo, `bad value for ${key}: ${problem}`));
  }

  let start = close + 1;
  while (start < lines.length && (lines[start] ?? '').trim() === '') start++;
  for (let i = start; i < lines.length; i++) {
    for (const m of (lines[i] ?? '').matchAll(PLACEHOLDER)) {
      const placeholder = m[1] ?? '';
      if (!TEMPLATE_VARIABLES.includes(placeholder) && !placeholder.startsWith(LITERAL_PREFIX) && ORIGINAL_PLACEHOLDERS[placeholder] === undefined) {
        throw new RoleFileError(file, i + 1, `unknown template placeholder '${m[0]}' (known: ${TEMPLATE_VARIABLES.join(', ')})`);
      }
    }
  }
  // The original Loom's `{{workspace}}` is `{{repo}}` here, also in a file that got front matter.
  role.template = lines
    .slice(start)
    .join('\n')
    .trimEnd()
    .replace(PLACEHOLDER, (match, inner: string) => (ORIGINAL_PLACEHOLDERS[inner] !== undefined ? `{{${ORIGINAL_PLACEHOLDERS[inner]}}}` : match));
  return role;
}

function setKey(role: RoleDefinition, key: string, value: string, bad: (problem: string) => RoleFileError): void {
  switch (key) {
    case 'runtime':
      if (!(RUNTIME_NAMES as readonly string[]).includes(value)) throw bad(`'${clip(value)}' is not a runtime (one of: ${RUNTIME_NAMES.join(', ')})`);
      role.runtime = value;
      return;
    case 'command':
    case 'model':
    case 'args':
      role[key] = value;
      return;
    case 'timeout':
    case 'interval':
    case 'cooldown': {
      const ms = parseDuration(value);
      if (ms === undefined) throw bad(`'${clip(value)}' is not a duration (e.g. 90s, 15m, 1h30m)`);
      role[key] = ms;
      return;
    }
  }
}

/**
 * The text of a front matter value: unquoted (a trailing ` # comment` removed), `"double"`
 * (with `\"`, `\\`, `\n`, `\t` escapes) or `'single'` (with `''` for a quote). Numbers and
 * booleans stay text here; each key decides what it accepts.
 */
function scalar(raw: string): string | { error: string } {
  const text = raw.trim();
  const quote = text[0];
  if (quote !== '"' && quote !== "'") return ` ${text}`.replace(/\s+#.*$/, '').trim();
  let out = '';
  let i = 1;
  for (; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote === "'" && c === "'") {
      if (text[i + 1] !== "'") break;
      out += "'";
      i++;
    } else if (quote === '"' && c === '\\') {
      const next = text[i + 1] ?? '';
      const escaped = ({ '"': '"', '\\': '\\', n: '\n', t: '\t' } as Record<string, string>)[next];
      if (escaped === undefined) return { error: `unsupported escape '\\${next}' in a quoted string` };
      out += escaped;
      i++;
    } else if (quote === '"' && c === '"') {
      break;
    } else {
      out += c;
    }
  }
  if (i >= text.length) return { error: 'unterminated quoted string' };
  const rest = text.slice(i + 1).trim();
  if (rest !== '' && !rest.startsWith('#')) return { error: `unexpected text after the quoted string: '${clip(rest)}'` };
  return out;
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * The role `name` from the first of `dirs` holding `<name>.md` (Loom passes
 * `[.loom/roles, defaultRolesDir()]`, so a repository's file overrides the built-in one).
 */
export function loadRole(name: string, dirs: readonly string[]): RoleDefinition {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) throw new RoleFileError(`${name}.md`, 0, `'${clip(name)}' is not a valid role name`);
  for (const dir of dirs) {
    const file = path.join(dir, `${name}.md`);
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(file, { throwIfNoEntry: false });
    } catch (err) {
      throw new RoleFileError(file, 0, `cannot read role file: ${(err as Error).message}`);
    }
    if (stat === undefined) continue;
    if (!stat.isFile()) throw new RoleFileError(file, 0, 'is not a regular file');
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new RoleFileError(file, 0, `cannot read role file: ${(err as Error).message}`);
    }
    const role = parseRoleFile(text, file, name);
    return role.original === true ? bridged(role, dirs.slice(dirs.indexOf(dir) + 1)) : role;
  }
  const where = dirs.length === 0 ? '(no role directories given)' : dirs.join(', ');
  throw new RoleFileError(dirs[0] === undefined ? `${name}.md` : path.join(dirs[0], `${name}.md`), 0, `no role file for '${name}' (looked in: ${where})`);
}

/**
 * Between an original role file's text and the built-in role's task: the original told its
 * agents to find work, claim it and write to the tracker themselves (`gh`, labels, pull
 * requests); here Loom does all of that from the agent's output, so the agent must follow the
 * task and output contract that come after.
 */
export const ORIGINAL_ROLE_BRIDGE = `## How this role runs under Loom

The role description above comes from this repository's earlier Loom installation. Loom now
chooses the work, and makes every tracker change itself from your output. Where the description
above tells you to look for work, claim issues, run \`gh\`, change labels, comment, open or merge
pull requests, push or switch branches, do not: do the task below, follow its rules, and end with
its output contract.`;

/**
 * An original role file completed with the built-in role (the next of `dirs` to have it): its
 * text, the bridge, then the built-in prompt with the work, the context and the output contract.
 * The built-in role's settings (timeout, interval) apply; the original's sidecar JSON is not read.
 */
function bridged(original: RoleDefinition, dirs: readonly string[]): RoleDefinition {
  let builtIn: RoleDefinition | undefined;
  try {
    builtIn = dirs.length > 0 ? loadRole(original.name, dirs) : undefined;
  } catch (error) {
    if (!(error instanceof RoleFileError)) throw error;
  }
  if (builtIn === undefined) return original;
  const { template: task, file: _file, notes: _notes, original: _original, ...settings } = builtIn;
  return { ...settings, name: original.name, file: original.file, original: true, notes: original.notes ?? [], template: `${original.template}\n\n${ORIGINAL_ROLE_BRIDGE}\n\n${task}` };
}

/** The package's built-in role files: `<package>/defaults/roles` (this file is in `src/config/` or `dist/config/`). */
export function defaultRolesDir(): string {
  return fileURLToPath(new URL('../../defaults/roles/', import.meta.url)).replace(/[\\/]$/, '');
}
