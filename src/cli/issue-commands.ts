/**
 * `loom issue …`: the local tracker's human interface. Reads take `--json`; writes are made as
 * the actor `human`, so the timeline shows who changed what.
 */
import type { Command } from 'commander';
import { canonicalLabel, Label, unknownLoomLabel, validateLabelName } from '../core/labels.js';
import type { Tracker } from '../tracker/tracker.js';
import type { Issue } from '../core/tracker-model.js';
import { missingIssue, parseIssueNumber, requirePaths, withTracker } from './context.js';
import { UserError } from '../core/errors.js';

function humanTracker<T>(fn: (tracker: Tracker) => Promise<T>, readonly = false): Promise<T> {
  return withTracker(requirePaths(), { actor: 'human', readonly }, fn);
}

async function existing(tracker: Tracker, number: number, command?: string): Promise<Issue> {
  const issue = await tracker.getIssue(number);
  if (issue === null) throw await missingIssue(tracker, number, command);
  return issue;
}

const collect = (value: string, previous: string[]) => [...previous, value];

/** The labels as given, Loom's own in their canonical spelling; a `UserError` for a bad or unknown one. */
function checkLabels(labels: readonly string[]): string[] {
  for (const label of labels) {
    const problem = validateLabelName(label) ?? unknownLoomLabel(label);
    if (problem !== undefined) throw new UserError(problem);
  }
  return labels.map(canonicalLabel);
}

function labelList(labels: readonly string[]): string {
  return labels.length > 0 ? `[${labels.join(', ')}]` : '';
}

/** `#9–#14, #16` for [9, 10, 11, 12, 13, 14, 16]; past `max` runs, the rest is `…`. */
function numberRanges(numbers: readonly number[], max = 5): string {
  const runs: [number, number][] = [];
  for (const n of [...numbers].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last !== undefined && n === last[1] + 1) last[1] = n;
    else runs.push([n, n]);
  }
  const shown = runs.slice(0, max).map(([a, b]) => (a === b ? `#${a}` : `#${a}–#${b}`));
  return `${shown.join(', ')}${runs.length > max ? ', …' : ''}`;
}

export function registerIssueCommands(program: Command, out: (line: string) => void): void {
  const pr = program.command('pr').description("the local tracker's pull requests: list, show");
  pr.command('list')
    .description('list open pull requests (all with --all)')
    .option('--all', 'include merged and closed ones')
    .option('--json', 'print JSON')
    .action(async (options: { all?: boolean; json?: boolean }) => {
      const prs = await humanTracker((t) => t.listPullRequests({ state: options.all ? 'all' : 'open' }), true);
      if (options.json) return out(JSON.stringify(prs, null, 2));
      if (prs.length === 0) return out('No pull requests.');
      for (const p of prs) out(`#${String(p.number).padEnd(5)} ${p.state === 'open' ? '' : `(${p.state}) `}${p.title} ${p.head} → ${p.base} ${labelList(p.labels)}`.trimEnd());
    });
  pr.command('show')
    .description('show a pull request with its comments')
    .argument('<number>', 'pull request number')
    .option('--json', 'print JSON')
    .action(async (numberArg: string, options: { json?: boolean }) => {
      const number = parseIssueNumber(numberArg);
      const { found, comments } = await humanTracker(async (t) => {
        const found = await t.getPullRequest(number);
        if (found === null) throw new UserError(`pull request #${number} does not exist; see \`loom pr list --all\``);
        return { found, comments: await t.listComments(number) };
      }, true);
      if (options.json) return out(JSON.stringify({ ...found, comments }, null, 2));
      out(`PR #${found.number} ${found.title}`);
      out(`state: ${found.state}   ${found.head} → ${found.base}   labels: ${found.labels.join(', ') || '(none)'}${found.closesIssue ? `   closes #${found.closesIssue}` : ''}`);
      if (found.body) out(`\n${found.body}`);
      for (const c of comments) out(`\n--- ${c.author} at ${c.createdAt}\n${c.body}`);
    });

  const issue = program.command('issue').description("the local tracker's issues: create, list, show, label, unlabel, comment, close");

  issue
    .command('create')
    .description('create an issue')
    .argument('<title>', 'issue title')
    .option('--body <text>', 'issue body', '')
    .option('--label <label>', 'add a label (repeatable)', collect, [])
    .option('--json', 'print the created issue as JSON')
    .action(async (title: string, options: { body: string; label: string[]; json?: boolean }) => {
      if (title.trim() === '') throw new UserError('the issue title must not be empty');
      const labels = checkLabels(options.label);
      const created = await humanTracker((t) => t.createIssue({ title, body: options.body, labels }));
      out(options.json ? JSON.stringify(created, null, 2) : `Created #${created.number}: ${created.title} ${labelList(created.labels)}`.trim());
    });

  issue
    .command('list')
    .description('list issues (open by default)')
    .option('--state <state>', 'open, closed or all', 'open')
    .option('--label <label>', 'only issues with this label (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(async (options: { state: string; label: string[]; json?: boolean }) => {
      if (!['open', 'closed', 'all'].includes(options.state)) throw new UserError(`--state must be open, closed or all, not "${options.state}"`);
      const labels = checkLabels(options.label);
      const { issues, prNumbers } = await humanTracker(async (t) => {
        const issues = await t.listIssues({ state: options.state as 'open' | 'closed' | 'all', labels });
        // Pull requests numbered between the listed issues leave gaps in the list: say what they are.
        // (The local tracker is cheap to ask; on GitHub the shared numbering is familiar already.)
        if (options.json || issues.length === 0 || t.kind !== 'local') return { issues, prNumbers: [] };
        const numbers = issues.map((i) => i.number);
        const [low, high] = [Math.min(...numbers), Math.max(...numbers)];
        const prNumbers = (await t.listPullRequests({ state: 'all' })).map((p) => p.number).filter((n) => n > low && n < high);
        return { issues, prNumbers };
      }, true);
      if (options.json) return out(JSON.stringify(issues, null, 2));
      if (issues.length === 0) return out('No issues.');
      for (const i of issues) out(`#${String(i.number).padEnd(5)} ${i.state === 'closed' ? '(closed) ' : ''}${i.title} ${labelList(i.labels)}`.trimEnd());
      if (prNumbers.length > 0) out(`(Issues and pull requests share one number sequence, as on GitHub: ${numberRanges(prNumbers)} ${prNumbers.length === 1 ? 'is a pull request' : 'are pull requests'}; \`loom pr list --all\` lists them.)`);
    });

  issue
    .command('show')
    .description('show an issue with its comments')
    .argument('<number>', 'issue number')
    .option('--json', 'print JSON')
    .action(async (numberArg: string, options: { json?: boolean }) => {
      const number = parseIssueNumber(numberArg);
      const { found, comments } = await humanTracker(async (t) => {
        const found = await existing(t, number, 'issue show');
        return { found, comments: await t.listComments(number) };
      }, true);
      if (options.json) return out(JSON.stringify({ ...found, comments }, null, 2));
      out(`#${found.number} ${found.title}`);
      out(`state: ${found.state}   labels: ${found.labels.join(', ') || '(none)'}   created: ${found.createdAt}`);
      if (found.body) out(`\n${found.body}`);
      for (const c of comments) out(`\n--- ${c.author} at ${c.createdAt}\n${c.body}`);
    });

  issue
    .command('label')
    .description('add labels (a state label replaces the previous one)')
    .argument('<number>', 'issue number')
    .argument('<labels...>', 'labels to add')
    .action(async (numberArg: string, labels: string[]) => {
      const number = parseIssueNumber(numberArg);
      const add = checkLabels(labels);
      const result = await humanTracker(async (t) => {
        const issue = await existing(t, number);
        // Nothing builds a closed issue: a ready label there would only look as if it were queued.
        if (issue.state === 'closed' && add.some((l) => l === Label.issue || l === Label.building)) throw new UserError(`issue #${number} is closed; reopen it first: \`loom issue reopen ${number}\``);
        // `loom:abort` stops a shepherd; on a ready or blocked issue none runs, and the label would only
        // end its next build at once (a blocked one's once a person makes it ready again); on a closed
        // issue nothing runs or will.
        if (add.includes(Label.abort) && !issue.labels.includes(Label.building)) {
          if (issue.state === 'closed') throw new UserError(`issue #${number} is closed: there is nothing to abort`);
          if (issue.labels.includes(Label.issue)) {
            throw new UserError(`issue #${number} is ready (${Label.issue}) and no shepherd builds it: there is nothing to abort; to keep it from being built, \`loom issue unlabel ${number} ${Label.issue}\``);
          }
          if (issue.labels.includes(Label.blocked)) throw new UserError(`issue #${number} is blocked (${Label.blocked}) and no shepherd builds it: there is nothing to abort`);
        }
        return t.updateLabels(number, { add });
      });
      out(`#${number}: ${result.join(', ') || '(no labels)'}`);
    });

  issue
    .command('unlabel')
    .description('remove labels')
    .argument('<number>', 'issue number')
    .argument('<labels...>', 'labels to remove')
    .action(async (numberArg: string, labels: string[]) => {
      const number = parseIssueNumber(numberArg);
      const remove = checkLabels(labels);
      const result = await humanTracker(async (t) => {
        await existing(t, number);
        return t.updateLabels(number, { remove });
      });
      out(`#${number}: ${result.join(', ') || '(no labels)'}`);
    });

  issue
    .command('comment')
    .description('add a comment')
    .argument('<number>', 'issue number')
    .argument('<text>', 'comment text')
    .action(async (numberArg: string, text: string) => {
      const number = parseIssueNumber(numberArg);
      if (text.trim() === '') throw new UserError('the comment must not be empty');
      await humanTracker(async (t) => {
        await existing(t, number);
        await t.comment(number, text);
      });
      out(`Commented on #${number}.`);
    });

  issue
    .command('close')
    .description('close an issue')
    .argument('<number>', 'issue number')
    .option('--comment <text>', 'comment to add before closing')
    .option('--not-planned', 'close it as not planned (work that will not be done): issues depending on it are told so')
    .action(async (numberArg: string, options: { comment?: string; notPlanned?: boolean }) => {
      const number = parseIssueNumber(numberArg);
      await humanTracker(async (t) => {
        const found = await existing(t, number);
        if (found.state === 'closed') throw new UserError(`issue #${number} is already closed`);
        await t.close(number, options.comment, options.notPlanned === true ? 'not-planned' : 'completed');
      });
      out(`Closed #${number}${options.notPlanned === true ? ' as not planned' : ''}.`);
    });

  issue
    .command('reopen')
    .description('reopen a closed issue (then `loom issue label N loom:issue` to build it)')
    .argument('<number>', 'issue number')
    .action(async (numberArg: string) => {
      const number = parseIssueNumber(numberArg);
      const labels = await humanTracker(async (t) => {
        const found = await existing(t, number);
        if (found.state === 'open') throw new UserError(`issue #${number} is open already`);
        await t.reopen(number);
        return (await t.getIssue(number))?.labels ?? [];
      });
      out(`Reopened #${number}${labels.length > 0 ? ` [${labels.join(', ')}]` : ''}.${labels.includes(Label.issue) ? '' : ` To build it: \`loom issue label ${number} ${Label.issue}\``}`);
    });
}
