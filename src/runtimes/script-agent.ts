/**
 * The script agent: the executable `ScriptRuntime` starts as the agent process. It reads the
 * instructions file, picks the `loom-script` block for its role and attempt, and carries out the
 * steps in its working directory. Exit codes: 0 done, 1 a step failed, 2 refused (bad script,
 * a path outside the working directory or inside `.git`, missing environment).
 *
 * Environment: LOOM_INSTRUCTIONS_FILE (required), LOOM_ROLE (required), LOOM_ATTEMPT (default 1).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseScript } from './script-language.js';
import type { Step } from './script-language.js';

/** The script cannot be run at all: nothing (more) is done. */
class Refused extends Error {}
/** A step did not succeed. */
class StepFailed extends Error {}
/** The script's own `fail` step; its message is already printed and stays the last line. */
class ScriptFailed extends Error {}

const say = (text: string) => process.stdout.write(`${text}\n`);
const note = (text: string) => say(`script: ${text}`);

/** Lexical check, done for every step before any runs, so a refused script changes nothing. */
function checkPath(p: string): string {
  if (path.isAbsolute(p)) throw new Refused(`${p}: absolute paths are not allowed`);
  const normal = path.normalize(p);
  const parts = normal.split(path.sep).filter((s) => s !== '');
  if (normal === '.' || parts.length === 0) throw new Refused(`${p}: names the working directory itself`);
  if (parts[0] === '..') throw new Refused(`${p}: escapes the working directory`);
  // Case-folded: on case-insensitive file systems `.GIT` is the same directory.
  if (parts.some((s) => s.toLowerCase() === '.git')) throw new Refused(`${p}: goes into .git`);
  return normal;
}

function isInside(root: string, target: string): boolean {
  const rel = path.relative(root, target);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/**
 * The absolute target of a checked path, re-checked against the file system just before use: a
 * symlink in the tree (made by an earlier `run`, say) must not lead a write outside or into `.git`.
 */
function target(root: string, p: string): string {
  const full = path.join(root, checkPath(p));
  let existing = full;
  for (;;) {
    try {
      fs.lstatSync(existing);
      break;
    } catch {
      existing = path.dirname(existing);
    }
  }
  let real: string;
  try {
    real = fs.realpathSync(existing);
  } catch {
    throw new Refused(`${p}: leads through a dangling symlink`);
  }
  if (!isInside(root, real)) throw new Refused(`${p}: leads outside the working directory`);
  if (path.relative(root, real).split(path.sep).some((s) => s.toLowerCase() === '.git')) throw new Refused(`${p}: leads into .git`);
  return full;
}

function stepPath(step: Step): string | null {
  return 'path' in step ? step.path : null;
}

function sh(command: string): void {
  const r = spawnSync('sh', ['-c', command], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new StepFailed(`could not run: ${r.error.message}`);
  if (r.status !== 0) throw new StepFailed(r.status === null ? `killed by ${r.signal ?? 'a signal'}` : `exited with code ${r.status}`);
}

function git(args: string[]): void {
  const r = spawnSync('git', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.error) throw new StepFailed(`could not run git: ${r.error.message}`);
  if (r.status !== 0) throw new StepFailed(`git ${args[0] ?? ''} exited with code ${String(r.status)}`);
}

async function execute(root: string, step: Step): Promise<void> {
  switch (step.type) {
    case 'write':
    case 'append': {
      note(`${step.type} ${step.path}`);
      const file = target(root, step.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (step.type === 'write') fs.writeFileSync(file, step.content);
      else fs.appendFileSync(file, step.content);
      return;
    }
    case 'delete': {
      note(`delete ${step.path}`);
      const file = target(root, step.path);
      if (!fs.existsSync(file)) throw new StepFailed(`delete ${step.path}: no such file`);
      fs.rmSync(file, { recursive: true });
      return;
    }
    case 'replace': {
      note(`replace ${step.path}`);
      const file = target(root, step.path);
      if (!fs.existsSync(file)) throw new StepFailed(`replace ${step.path}: no such file`);
      let content = fs.readFileSync(file, 'utf8');
      // All edits apply in memory first: a missing text leaves the file as it was.
      for (const edit of step.edits) {
        const at = content.indexOf(edit.old);
        if (at === -1) throw new StepFailed(`replace ${step.path}: text not found: ${JSON.stringify(edit.old)}`);
        content = content.slice(0, at) + edit.new + content.slice(at + edit.old.length);
      }
      fs.writeFileSync(file, content);
      return;
    }
    case 'run':
      note(`run ${step.command}`);
      try {
        sh(step.command);
      } catch (error) {
        if (error instanceof StepFailed) throw new StepFailed(`run ${step.command}: ${error.message}`);
        throw error;
      }
      return;
    case 'say':
      say(step.text);
      return;
    case 'commit':
      note(`commit ${step.message}`);
      git(['add', '-A']);
      git(['commit', '-q', '-m', step.message]);
      return;
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, step.seconds * 1000));
      return;
    case 'hang':
      // Silent forever: only the runtime's stall or timeout watchdog ends this process.
      await new Promise(() => setInterval(() => undefined, 60_000));
      return;
    case 'fail':
      process.stderr.write(`${step.message}\n`);
      throw new ScriptFailed(step.message);
  }
}

function defaultFor(role: string, attempt: number): void {
  if (role === 'judge') {
    note(`no loom-script block for judge (attempt ${attempt}); approving by default`);
    say('VERDICT: APPROVE');
  } else {
    note(`no loom-script block for ${role} (attempt ${attempt}); nothing to do`);
  }
}

async function main(): Promise<number> {
  const file = process.env.LOOM_INSTRUCTIONS_FILE;
  const role = process.env.LOOM_ROLE;
  const attempt = Number(process.env.LOOM_ATTEMPT ?? '1');
  if (!file || !role) throw new Refused('LOOM_INSTRUCTIONS_FILE and LOOM_ROLE must be set');
  if (!Number.isInteger(attempt) || attempt < 1) throw new Refused(`LOOM_ATTEMPT must be a positive whole number, got "${process.env.LOOM_ATTEMPT}"`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Refused(`cannot read instructions: ${(error as Error).message}`);
  }
  const parsed = parseScript(text, role, attempt);
  if (!parsed.ok) throw new Refused(parsed.error);
  if (!parsed.found) {
    defaultFor(role, attempt);
    return 0;
  }
  const root = fs.realpathSync(process.cwd());
  for (const step of parsed.steps) {
    const p = stepPath(step);
    if (p !== null) {
      try {
        checkPath(p);
      } catch (error) {
        if (error instanceof Refused) throw new Refused(`line ${step.line}: ${error.message}`);
        throw error;
      }
    }
  }
  for (const step of parsed.steps) {
    try {
      await execute(root, step);
    } catch (error) {
      if (error instanceof ScriptFailed) return 1;
      if (error instanceof Refused) throw new Refused(`line ${step.line}: ${error.message}`);
      if (error instanceof StepFailed) throw new StepFailed(`line ${step.line}: ${error.message}`);
      // Anything else is the file system's error (permissions, a directory in the way, ...).
      throw new StepFailed(`line ${step.line}: ${step.type}: ${(error as Error).message}`);
    }
  }
  return 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  if (error instanceof Refused) {
    process.stderr.write(`script: refused: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`script: failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
