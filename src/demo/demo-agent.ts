/**
 * The demo's builder: a deterministic script agent. It reads its issue from `LOOM_ISSUE` and
 * `LOOM_ISSUE_TITLE`, "works" for a moment with visible output, writes a note for the issue, and
 * fails when the title asks it to — so the demo shows both outcomes without any model.
 */
import fs from 'node:fs';
import path from 'node:path';

const issue = process.env.LOOM_ISSUE ?? '?';
const title = process.env.LOOM_ISSUE_TITLE ?? '';
const root = process.env.LOOM_REPO_ROOT ?? process.cwd();

const steps = ['reading the issue', 'planning the change', 'editing files'];
let i = 0;
const timer = setInterval(() => {
  const step = steps[i];
  if (step !== undefined) {
    process.stdout.write(`demo-agent #${issue}: ${step}\n`);
    i += 1;
    return;
  }
  clearInterval(timer);
  if (/\bfail\b/i.test(title)) {
    process.stderr.write(`demo-agent #${issue}: cannot do "${title}"\n`);
    process.exit(1);
  }
  const dir = path.join(root, 'notes');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `issue-${issue}.md`), `# ${title}\n\nDone by the demo agent.\n`);
  process.stdout.write(`demo-agent #${issue}: wrote notes/issue-${issue}.md\n`);
}, 250);
