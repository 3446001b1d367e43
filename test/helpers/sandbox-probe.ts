/**
 * What the sandbox tests share: a fake user home holding the secrets an agent must not reach
 * (a GitHub CLI token, an SSH key, a git identity), a Loom repository's private files beside the
 * worktree (state file, tracker database, another issue's worktree and agent home), and a probe
 * script an agent runs to report, one line per check, what it can reach.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A temp HOME with `~/.config/gh/hosts.yml`, `~/.ssh/id_rsa` and a git identity in `~/.gitconfig`. */
export function fakeHome(): string {
  const home = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-sandbox-home-')));
  fs.mkdirSync(path.join(home, '.config', 'gh'), { recursive: true });
  fs.writeFileSync(path.join(home, '.config', 'gh', 'hosts.yml'), 'github.com:\n    oauth_token: gho_fake_token_the_agent_must_not_read\n');
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(home, '.ssh', 'id_rsa'), '-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n', { mode: 0o600 });
  fs.writeFileSync(path.join(home, '.gitconfig'), '[user]\n\tname = Sandbox Probe\n\temail = probe@localhost\n');
  return home;
}

/** Puts Loom's private files where a real repository has them: state, tracker, another issue's worktree and agent home. */
export function plantLoomSecrets(root: string): void {
  const loom = path.join(root, '.loom');
  fs.mkdirSync(loom, { recursive: true });
  if (!fs.existsSync(path.join(loom, 'daemon-state.json'))) fs.writeFileSync(path.join(loom, 'daemon-state.json'), '{"running":false}\n');
  if (!fs.existsSync(path.join(loom, 'tracker.db'))) fs.writeFileSync(path.join(loom, 'tracker.db'), 'not really sqlite\n');
  const other = path.join(loom, 'worktrees', 'issue-9');
  execFileSync('git', ['worktree', 'add', '-q', '-b', 'loom/issue-9', other], { cwd: root, stdio: 'ignore' });
  fs.writeFileSync(path.join(other, 'SECRET.txt'), 'work of another issue\n');
  fs.mkdirSync(path.join(loom, 'agent-homes', 'issue-9', 'claude'), { recursive: true });
  fs.writeFileSync(path.join(loom, 'agent-homes', 'issue-9', 'claude', '.credentials.json'), '{"token":"another task\'s login"}\n');
}

/**
 * A repository in `<parent>/main` laid out as Loom keeps one: the main checkout, the worktree of
 * issue 1 (`.loom/worktrees/issue-1`, on `loom/issue-1`) holding `probe.sh`, and Loom's private
 * files around it (`plantLoomSecrets`).
 */
export function probeRepo(parent: string): { repoRoot: string; worktree: string } {
  const repoRoot = path.join(parent, 'main');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: repoRoot, stdio: 'ignore' });
  fs.mkdirSync(repoRoot, { recursive: true });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(repoRoot, 'README.md'), '# the main checkout\n');
  git('add', '.');
  git('-c', 'user.name=Tests', '-c', 'user.email=tests@localhost', 'commit', '-qm', 'initial');
  const worktree = path.join(repoRoot, '.loom', 'worktrees', 'issue-1');
  git('worktree', 'add', '-q', '-b', 'loom/issue-1', worktree);
  plantLoomSecrets(repoRoot);
  fs.writeFileSync(path.join(worktree, 'probe.sh'), PROBE_SCRIPT);
  return { repoRoot, worktree };
}

/**
 * The probe (POSIX sh, run in the worktree with `$HOME` and `$LOOM_REPO_ROOT` set): reads, writes
 * outside the worktree, and a commit in it of `PROBE.txt`, which holds the report of the reads and
 * writes. Each line is `<check>: <seen|hidden|wrote|refused|ok|failed>`.
 */
export const PROBE_SCRIPT = `#!/bin/sh
# What can this agent reach? One line per check, also kept in PROBE.txt, which it then commits.
report() { echo "$1" | tee -a PROBE.txt; }
seen() { if grep -q . "$2" 2>/dev/null; then report "$1: seen"; else report "$1: hidden"; fi; }
write() { if (printf 'probe\\n' > "$2") 2>/dev/null; then report "$1: wrote"; else report "$1: refused"; fi; }
seen gh-token "$HOME/.config/gh/hosts.yml"
seen ssh-key "$HOME/.ssh/id_rsa"
seen state-file "$LOOM_REPO_ROOT/.loom/daemon-state.json"
seen tracker-db "$LOOM_REPO_ROOT/.loom/tracker.db"
seen other-worktree "$LOOM_REPO_ROOT/.loom/worktrees/issue-9/SECRET.txt"
seen other-agent-home "$LOOM_REPO_ROOT/.loom/agent-homes/issue-9/claude/.credentials.json"
seen main-checkout "$LOOM_REPO_ROOT/README.md"
write outside-worktree "$LOOM_REPO_ROOT/OUTSIDE.txt"
write git-hooks "$LOOM_REPO_ROOT/.git/hooks/post-commit"
write private-tmp "/tmp/loom-probe-$$.txt"; rm -f "/tmp/loom-probe-$$.txt"
if git add PROBE.txt && git commit -q -m "Probe commit" 2>/dev/null; then echo "commit: ok"; else echo "commit: failed"; fi
echo "probe: done"
`;

/** The probe's report: check name → result. */
export function probeReport(output: string): Record<string, string> {
  const report: Record<string, string> = {};
  for (const match of output.matchAll(/^([a-z-]+): (seen|hidden|wrote|refused|ok|failed|done)$/gm)) report[match[1] ?? ''] = match[2] ?? '';
  return report;
}

/** What the probe must report inside the sandbox: nothing of the user's or Loom's, no write outside, a commit. */
export const SANDBOXED = {
  'gh-token': 'hidden',
  'ssh-key': 'hidden',
  'state-file': 'hidden',
  'tracker-db': 'hidden',
  'other-worktree': 'hidden',
  'other-agent-home': 'hidden',
  'main-checkout': 'hidden',
  'outside-worktree': 'refused',
  'git-hooks': 'refused',
  'private-tmp': 'wrote',
  commit: 'ok',
  probe: 'done',
};

/** What the same probe reports without a sandbox: all of it. */
export const UNSANDBOXED = {
  'gh-token': 'seen',
  'ssh-key': 'seen',
  'state-file': 'seen',
  'tracker-db': 'seen',
  'other-worktree': 'seen',
  'other-agent-home': 'seen',
  'main-checkout': 'seen',
  'outside-worktree': 'wrote',
  'git-hooks': 'wrote',
  'private-tmp': 'wrote',
  commit: 'ok',
  probe: 'done',
};
