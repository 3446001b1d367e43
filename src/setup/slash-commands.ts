/**
 * The Claude Code slash commands `loom init --claude` writes: `.claude/commands/loom.md` (`/loom`)
 * and `shepherd.md` (`/shepherd N`). Each is a prompt with Claude Code's front matter
 * (`description`, `argument-hint`, `allowed-tools` limited to the `loom` command) that runs only
 * commands which return at once: the daemon and shepherds start detached, so the Claude Code
 * session is never blocked.
 *
 * Invariant owned here: a user's own command file is never overwritten. One that differs from ours
 * stays; ours is written beside it (`<name>.loom-new.md`) with a one-line note. Only a file that
 * is byte for byte one an earlier `loom init --claude` wrote is replaced.
 */
import fs from 'node:fs';
import path from 'node:path';

const LOOM_COMMAND = `---
description: Run Loom for this repository - start it in the background, status, stop, spawn, why, logs
argument-hint: "[status | stop | iterate | spawn <issue> | why <issue> | logs <issue|role|daemon> | --force]"
allowed-tools: Bash(loom:*)
---
# /loom

Operate Loom, the daemon that keeps this repository's issue backlog flowing through AI coding
agents, with its \`loom\` command line. The arguments are: "$ARGUMENTS".

Run the commands for these arguments with the Bash tool, one call per command, in this order:

| arguments | run |
|---|---|
| (none) or \`start\` | \`loom start --detach\`, then \`loom status\` |
| \`--force\` or \`start --force\` | \`loom start --detach --force\`, then \`loom status\` |
| \`status\` | \`loom status\` |
| \`stop\` | \`loom stop\` |
| \`iterate\` or \`iterate --force\` | \`loom iterate\` with the same arguments |
| \`spawn N\` (optionally \`--force-merge\`) | \`loom spawn N\` with the same arguments |
| \`why N\` | \`loom why N\` |
| \`logs X\` (an issue number, a role, or \`daemon\`) | \`loom logs X\` |
| anything else | \`loom\` followed by the arguments |

Every one of these returns within seconds. Never run a command that keeps running, because it
would block this session: not \`loom\` or \`loom start\` without \`--detach\`, not \`loom shepherd\`,
\`loom role\` or \`loom dashboard\`, not \`-f\` or \`--watch\`. The daemon runs in the background;
\`loom start --detach\` saying that a daemon is already running is fine: say so and show the status.

Then show the user each command's output unchanged, in a code block (the status box as it is).
When a command fails, give its one-line message and the command it suggests. If \`loom\` is not
found, say that Loom must be installed and on PATH (\`npm link\` in Loom's clone puts it there).
`;

const SHEPHERD_COMMAND = `---
description: Start a Loom shepherd for one issue in the background and show its log so far
argument-hint: "<issue> [--force-merge]"
allowed-tools: Bash(loom:*)
---
# /shepherd

Have Loom drive one issue through its lifecycle (builder, judge, doctor, merge) in the
background, without blocking this session. The arguments are: "$ARGUMENTS".

1. Run \`loom spawn $ARGUMENTS\` with the Bash tool. It starts the shepherd detached and prints its
   pid (the shepherd host's, shared with the other issues it runs, when it runs there) and its log file.
2. Run \`loom logs N\` (without \`-f\`), N being the issue number (the first argument), to show
   what it has done so far.

Show the user both outputs unchanged, in a code block, and tell them: \`/loom logs N\` shows more
later, \`/loom status\` shows every shepherd, and \`loom issue label N loom:abort\` stops this one.
Never run \`loom shepherd\` itself here: it runs in the foreground until the issue is done.
If a command fails, give its one-line message and the command it suggests.
`;

/** What earlier versions of `loom init --claude` wrote: replaced as ours when found unchanged. */
const EARLIER_LOOM = [
  `# Loom

Run the Loom daemon command for this repository and report its output.

\`\`\`bash
loom $ARGUMENTS
\`\`\`

- \`/loom\` or \`/loom --force\`: start the daemon (runs until \`/loom stop\` or Ctrl+C in its terminal)
- \`/loom iterate [--force]\`: run exactly one iteration and print its summary
- \`/loom status\`: read-only report
- \`/loom spawn 123\`: start a shepherd for issue #123 now
- \`/loom stop\`: ask the daemon to shut down gracefully

ARGUMENTS: $ARGUMENTS
`,
];

const EARLIER_SHEPHERD = [
  `# Shepherd

Drive one issue through Loom's lifecycle by running:

\`\`\`bash
loom shepherd $ARGUMENTS
\`\`\`

ARGUMENTS: $ARGUMENTS
`,
];

interface CommandFile {
  name: string;
  content: string;
  earlier: string[];
}

const COMMAND_FILES: CommandFile[] = [
  { name: 'loom', content: LOOM_COMMAND, earlier: EARLIER_LOOM },
  { name: 'shepherd', content: SHEPHERD_COMMAND, earlier: EARLIER_SHEPHERD },
];

/** The suffix of our copy written beside a user's own command file. */
const BESIDE_SUFFIX = '.loom-new.md';

/**
 * Writes `/loom` and `/shepherd` into `<root>/.claude/commands/`, keeping any user file (see the
 * invariant above), and logs what it did: one line for what was written, one line per kept file.
 */
export function writeSlashCommands(root: string, log: (line: string) => void): void {
  const dir = path.join(root, '.claude', 'commands');
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const current: string[] = [];
  for (const file of COMMAND_FILES) {
    const target = path.join(dir, `${file.name}.md`);
    const existing = readIfFile(target);
    if (existing === file.content) {
      current.push(`${file.name}.md`);
    } else if (existing === null || file.earlier.includes(existing)) {
      fs.writeFileSync(target, file.content);
      written.push(`${file.name}.md`);
    } else {
      const beside = path.join(dir, `${file.name}${BESIDE_SUFFIX}`);
      if (readIfFile(beside) !== file.content) fs.writeFileSync(beside, file.content);
      log(
        `Note: kept your .claude/commands/${file.name}.md (it differs from Loom's); Loom's is .claude/commands/${file.name}${BESIDE_SUFFIX} (/${file.name}${BESIDE_SUFFIX.replace(/\.md$/, '')}): compare them and merge by hand.`,
      );
    }
  }
  if (written.length > 0) log(`Wrote .claude/commands/${written.join(' and ')}: /loom (starts the daemon in the background), /loom status, /loom stop, /loom spawn N, /loom why N, /loom logs N, /shepherd N`);
  if (current.length > 0) log(`.claude/commands/${current.join(' and ')} already up to date`);
}

function readIfFile(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
